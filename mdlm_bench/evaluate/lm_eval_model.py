"""lm-evaluation-harness model `mdlm`: an MDLM and its sampler behind lm-eval's LM interface.

Two ways in:
  * Python: `lm_eval.simple_evaluate(model=MDLMEvalLM(model=m, ...), task_manager=..., tasks=[...])`.
  * Command line (`mdlm_bench.evaluate.lm_eval`): `python -m mdlm_bench.evaluate.lm_eval --model mdlm --model_args pretrained=DIR,steps=32 --tasks synth
    --include_path tasks/` runs lm-eval's own CLI with `mdlm` registered. When every requested task is found
    under --include_path, lm-eval's ~thousands of built-in tasks are not indexed (loads in ms, not seconds).

Decoding settings come from --model_args (gen_length, steps, block_length, temperature, remasking, threshold,
cfg_scale, suppress_eos, eos_confidence_inf); a task contributes only `until` and `max_gen_toks`. A request's
max_gen_toks becomes gen_length, rounded up to a multiple of block_length, with steps scaled to keep the
model_args' steps per token.

`chat=True` (default) wraps each generation context as one user turn of the model's chat template.
Log-likelihood requests score the raw context (tokenizer specials included), as LLaDA's eval_llada.py does;
`loglikelihood_chat=true` templates them too. Contexts that lm-eval already templated (--apply_chat_template,
through `apply_chat_template` below) are used as they are.

loglikelihood is LLaDA's Monte Carlo estimate of the ELBO (mdlm_bench.evaluate.likelihood, mc_num=128 samples by default
as in LLaDA), a lower bound, not the exact log-likelihood; is_greedy compares the continuation with greedy
one-token-per-step unmasking. Trailing whitespace of the context moves to the continuation (context.rstrip(),
as LLaDA's and lm-eval's _encode_pair). `pad_to=canvas` scores the continuation the way a fixed-canvas model
was trained: followed by one EOS and padding (EOS or <slack>) up to `canvas` tokens, all of it scored;
`pad_to=none` scores the continuation alone. The default comes from the checkpoint's mdlm_bench.json (the
trainer records its canvas), else none.
loglikelihood_rolling applies the same estimator to consecutive windows of the model's max positions
(the last window gets the most context that fits) and sums them, so it too is a bound.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lm_eval.api.model import LM

from mdlm_bench.decode.config import DecodeConfig, config_for_max_tokens  # noqa: F401 (re-exported)
from mdlm_bench.errors import UserError, did_you_mean
from mdlm_bench.progress import live_progress
from mdlm_bench.evaluate.lm_eval_dist import ProcessGroupMixin

NAME = "mdlm"
PAD_TO = ("canvas", "none")
log = logging.getLogger(__name__)
_DECODING_FIELDS = {f.name: f for f in dataclasses.fields(DecodeConfig)}


# --- pure helpers -------------------------------------------------------------------------------
def cut_at_stops(text: str, until: Sequence[str]) -> str:
    """Text up to the earliest occurrence of any non-empty stop string."""
    cut = len(text)
    for s in until:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def _same_float(a: Any, b: float) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _as_bool(name: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise UserError(f"model arg {name}={v!r} is not a boolean; use {name}=true or {name}=false")


def _coerce(name: str, v: Any, kind: type) -> Any:
    """model_args values arrive as str/int/float/bool/None; convert to the field's type."""
    if kind is bool:
        return _as_bool(name, v)
    if v is None or (isinstance(v, str) and v.strip().lower() == "none"):
        return None
    try:
        return kind(v)
    except (TypeError, ValueError):
        raise UserError(f"model arg {name}={v!r} is not a valid {kind.__name__}; fix --model_args") from None


def decoding_from_args(decoding: Any, overrides: Dict[str, Any]) -> DecodeConfig:
    """DecodeConfig from a DecodeConfig/dict/None plus model_args overrides (unknown names refused)."""
    from mdlm_bench.config import from_dict

    if isinstance(decoding, DecodeConfig):
        base = dataclasses.asdict(decoding)
    elif decoding is None:
        base = {}
    elif isinstance(decoding, dict):
        base = from_dict(DecodeConfig, decoding, "decoding").to_dict()
    else:
        raise UserError(f"decoding must be a DecodeConfig or a dict, got {type(decoding).__name__}")
    hints = typing.get_type_hints(DecodeConfig)
    for k, v in overrides.items():
        kind = [a for a in typing.get_args(hints[k]) if a is not type(None)] or [hints[k]]  # Optional[X] -> X
        base[k] = _coerce(k, v, kind[0])
    return DecodeConfig(**base).validate()


# --- the model ----------------------------------------------------------------------------------
class MDLMEvalLM(ProcessGroupMixin, LM):
    """lm-eval LM over an MDLM. See the module docstring for the decoding and likelihood conventions.

    row_hook (optional): lookup(task, doc_id, doc, context) -> str | None returns a cached output;
    decode(prompt_ids, keys, config) -> list[GenResult] decodes the misses (keys: (task, doc_id, doc,
    context)). Stop strings are applied to both.
    """

    def __init__(self, pretrained: Optional[str] = None, model=None, decoding=None, batch_size=16,
                 chat: bool = True, seed: int = 0, mc_num: int = 128, mc_batch_size: int = 32, dtype="auto",
                 device="auto", row_hook=None, trust_remote_code: bool = False, allow_pickle: bool = False,
                 max_batch_size=None, loglikelihood_chat: bool = False, pad_to: Optional[str] = None,
                 canvas: Optional[int] = None, **model_args):
        super().__init__()
        self._join_process_group()  # lm-eval splits requests over these ranks
        unknown = sorted(set(model_args) - set(_DECODING_FIELDS))
        if unknown:
            valid = sorted(set(_DECODING_FIELDS) | {"pretrained", "batch_size", "chat", "seed", "mc_num",
                                                      "mc_batch_size", "dtype", "device", "trust_remote_code",
                                                      "allow_pickle", "loglikelihood_chat", "pad_to", "canvas"})
            raise UserError(f"unknown model arg '{unknown[0]}'{did_you_mean(unknown[0], valid)} for --model "
                            f"{NAME}; fix --model_args")
        self.decoding = decoding_from_args(decoding, model_args)
        self.batch_size = self._batch_size(batch_size)
        self.chat = _as_bool("chat", chat)
        self.seed = _coerce("seed", seed, int) or 0
        self.mc_num = _coerce("mc_num", mc_num, int) or 0
        self.mc_batch_size = _coerce("mc_batch_size", mc_batch_size, int) or 0
        if self.mc_num < 1 or self.mc_batch_size < 1:
            raise UserError(f"mc_num ({mc_num}) and mc_batch_size ({mc_batch_size}) must be >= 1; fix --model_args")
        self.row_hook = row_hook
        if model is None:
            if pretrained is None:
                raise UserError(f"--model {NAME} needs a checkpoint: pass --model_args pretrained=DIR")
            from mdlm_bench.models import load_model

            model = load_model(pretrained, dtype=dtype or "auto", device=self._device_name(device),
                               trust_remote_code=_as_bool("trust_remote_code", trust_remote_code),
                               allow_pickle=_as_bool("allow_pickle", allow_pickle))
        self.mdlm = model
        self._device = model.device
        self.loglikelihood_chat = _as_bool("loglikelihood_chat", loglikelihood_chat)
        self.pad_to, self.canvas, self._canvas_fill = self._canvas_settings(pad_to, canvas)
        self._templated: set = set()  # contexts produced by our apply_chat_template (already templated)
        self._warned: set = set()

    def _canvas_settings(self, pad_to, canvas) -> Tuple[str, Optional[int], Optional[int]]:
        """(pad_to, canvas length, fill token id) from the model args, defaulting to the checkpoint's metadata."""
        meta = getattr(self.mdlm, "meta", None)
        mode = str(pad_to if pad_to is not None else getattr(meta, "pad_to", "none") or "none").strip().lower()
        if mode not in PAD_TO:
            raise UserError(f"model arg pad_to={pad_to!r}{did_you_mean(mode, PAD_TO)} is not one of "
                            f"{', '.join(PAD_TO)}; fix --model_args")
        if mode == "none":
            return mode, None, None
        n = _coerce("canvas", canvas, int) if canvas is not None else getattr(meta, "canvas", None)
        if not n or n < 1:
            raise UserError("pad_to=canvas needs the trained canvas length: this checkpoint's mdlm_bench.json has "
                            "none; pass --model_args canvas=N (the recipe's canvas) or pad_to=none")
        if not self.mdlm.eos_ids:
            raise UserError("pad_to=canvas needs an EOS token and the checkpoint declares none; use pad_to=none")
        eos = self.mdlm.eos_ids[0]
        fill = self.mdlm.slack_id if getattr(meta, "canvas_pad_with", "eos") == "slack" else None
        return mode, int(n), fill if fill is not None else eos

    def pad_continuation(self, target: List[int]) -> List[int]:
        """pad_to=canvas: target + one EOS + fill up to the canvas (unchanged when it does not fit)."""
        if self.pad_to != "canvas":
            return target
        if len(target) >= self.canvas:
            self._warn_once("canvas", "continuations of %d+ tokens do not fit the trained canvas of %d tokens "
                            "and are scored unpadded", self.canvas, self.canvas)
            return target
        eos = self.mdlm.eos_ids[0]
        return list(target) + [eos] + [self._canvas_fill] * (self.canvas - len(target) - 1)

    @staticmethod
    def _device_name(device) -> str:
        """lm-eval's CLI passes device=cuda:0 by default; like its HF model, fall back when CUDA is absent."""
        import torch

        if not device:
            return "auto"
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            log.warning("device %s is not available here; using cpu", device)
            return "cpu"
        return str(device)

    @staticmethod
    def _batch_size(value) -> int:
        if value is None:
            return 16
        s = str(value).strip().lower()
        if s.startswith("auto"):
            log.info("batch_size=auto is not supported by --model %s; using 16", NAME)
            return 16
        try:
            n = int(s)
        except ValueError:
            n = 0
        if n < 1:
            raise UserError(f"batch_size must be a positive integer, got {value!r}; pass e.g. batch_size=16")
        return n

    def _warn_once(self, key: str, msg: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    # --- chat templates (lm-eval's --apply_chat_template) --------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.mdlm.tokenizer, "name_or_path", "") or self.mdlm.name).replace("/", "__")

    def chat_template(self, chat_template=False) -> Optional[str]:
        return getattr(self.mdlm.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history: List[Dict[str, str]], add_generation_prompt: bool = True) -> str:
        tok = self.mdlm.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)
        else:
            text = "".join(m["content"] for m in chat_history)
        self._templated.add(text)
        return text

    # --- encoding ------------------------------------------------------------------------------
    def _prefix(self, context: str, chat: Optional[bool] = None) -> Tuple[str, bool]:
        """(text the model sees before the continuation, whether the tokenizer adds its specials)."""
        if context in self._templated:
            return context, False
        if self.chat if chat is None else chat:
            return self.mdlm.chat_prompt([{"role": "user", "content": context}]), False
        return context, True

    def _encode(self, text: str, specials: bool) -> List[int]:
        return list(self.mdlm.tokenizer(text, add_special_tokens=specials)["input_ids"])

    def prompt_ids(self, context: str) -> List[int]:
        return self._encode(*self._prefix(context))

    def encode_pair(self, context: str, continuation: str) -> Tuple[List[int], List[int]]:
        """(prompt ids, continuation ids); trailing context whitespace moves to the continuation (rstrip(), as
        LLaDA's and lm-eval's _encode_pair). The context is raw unless loglikelihood_chat is set."""
        n_space = len(context) - len(context.rstrip())
        if n_space:
            continuation = context[-n_space:] + continuation
            context = context[:-n_space]
        prefix, specials = self._prefix(context, self.loglikelihood_chat)
        ctx = self._encode(prefix, specials)
        whole = self._encode(prefix + continuation, specials)
        if whole[:len(ctx)] == ctx:
            return ctx, whole[len(ctx):]
        return ctx, self._encode(continuation, False)  # the tokenizer merged across the boundary

    def _fit(self, prompt: List[int], n_after: int, what: str) -> List[int]:
        """The prompt, cut from the left so that prompt + n_after tokens fit the model's positions."""
        limit = self.mdlm.max_positions
        if limit is None or len(prompt) + n_after <= limit:
            return prompt
        if n_after >= limit:
            raise UserError(f"{what} of {n_after} tokens does not fit the model's {limit} positions; "
                            "lower max_gen_toks / gen_length or use shorter continuations")
        self._warn_once("truncate", "prompts longer than the model's %d positions are cut from the left", limit)
        return prompt[len(prompt) - (limit - n_after):]

    # --- likelihood ----------------------------------------------------------------------------
    def _mc(self, pairs) -> list:
        from mdlm_bench.evaluate.likelihood import mc_loglikelihood

        with live_progress("MC log-likelihood", len(pairs) * self.mc_num) as advance:
            return mc_loglikelihood(self.mdlm, pairs, self.mc_num, self.mc_batch_size, self.seed,
                                    self.decoding.cfg_scale, on_chunk=advance)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> List[Tuple[float, bool]]:
        from mdlm_bench.evaluate.likelihood import greedy_matches

        pairs = []
        for req in requests:
            prompt, target = self.encode_pair(*req.args)
            target = self.pad_continuation(target)
            pairs.append((self._fit(prompt, len(target), "a continuation"), target))
        est = self._mc(pairs)
        greedy = greedy_matches(self.mdlm, pairs, batch_size=self.mc_batch_size, cfg_scale=self.decoding.cfg_scale)
        out = [(e.mean, bool(g)) for e, g in zip(est, greedy)]
        for req, res in zip(requests, out):
            self.cache_hook.add_partial("loglikelihood", req.args, res)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> List[float]:
        from mdlm_bench.evaluate.likelihood import rolling_windows

        limit = self.mdlm.max_positions
        pairs, owner = [], []
        for r, req in enumerate(requests):
            ids = self._encode(req.args[0], True)  # a document, not a chat turn: no template
            for c0, s, e in rolling_windows(len(ids), limit or max(1, len(ids))):
                pairs.append((ids[c0:s], ids[s:e]))
                owner.append(r)
        est = self._mc(pairs)
        out = [0.0] * len(requests)
        for r, e in zip(owner, est):
            out[r] += e.mean
        for req, res in zip(requests, out):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, res)
        return out

    # --- generation ----------------------------------------------------------------------------
    def _request_config(self, gen_kwargs: Dict[str, Any]) -> Tuple[List[str], DecodeConfig]:
        gen_kwargs = dict(gen_kwargs or {})
        until = gen_kwargs.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        mgt = gen_kwargs.pop("max_gen_toks", None)
        cfg = config_for_max_tokens(self.decoding, int(mgt)) if mgt is not None else self.decoding
        ignored = sorted(k for k, v in gen_kwargs.items()
                         if not (k == "do_sample" and not v)
                         and not (k == "temperature" and _same_float(v, self.decoding.temperature)))
        if ignored:
            self._warn_once("gen_kwargs", "task generation_kwargs %s ignored: decoding settings come from "
                            "--model_args (e.g. temperature=, steps=)", ignored)
        return until, cfg

    def _seed(self, doc_id: int, repeat: int) -> int:
        """seed + doc_id, so a row's output does not depend on its batch; repeats get distinct derived seeds."""
        if repeat == 0:
            return self.seed + doc_id
        from mdlm_bench.evaluate.likelihood import request_seed

        return request_seed(self.seed, [doc_id], [repeat]) % (2 ** 31)

    def generate_until(self, requests, disable_tqdm: bool = False) -> List[str]:
        from mdlm_bench.decode.prompts import generate_many

        outputs: List[Optional[str]] = [None] * len(requests)
        groups: Dict[Tuple, List[int]] = {}
        untils, configs, keys, seeds = [], [], [], []
        seen: Dict[Tuple, int] = {}
        for k, req in enumerate(requests):
            context, gen_kwargs = req.args
            until, cfg = self._request_config(gen_kwargs)
            doc_id = req.doc_id if req.doc_id is not None else k
            key = (req.task_name, doc_id, req.doc, context)
            rep = seen.get((req.task_name, doc_id, context), 0)
            seen[(req.task_name, doc_id, context)] = rep + 1
            untils.append(until)
            configs.append(cfg)
            keys.append(key)
            seeds.append(self._seed(doc_id, rep))
            cached = self.row_hook.lookup(*key) if self.row_hook is not None else None
            if cached is not None:
                outputs[k] = cut_at_stops(cached, until)
            else:
                groups.setdefault(tuple(sorted(dataclasses.asdict(cfg).items())), []).append(k)

        with live_progress("generate_until", sum(len(g) for g in groups.values())) as advance:
            for idx in groups.values():
                cfg = configs[idx[0]]
                prompts = [self._fit(self.prompt_ids(requests[k].args[0]), cfg.gen_length, "gen_length")
                           for k in idx]
                if self.row_hook is not None:
                    results = self.row_hook.decode(prompts, [keys[k] for k in idx], cfg)
                    advance(len(idx))
                else:
                    results = generate_many(self.mdlm, prompts, cfg, [seeds[k] for k in idx], self.batch_size,
                                            on_batch=lambda i, res: advance(len(i)))
                for k, res in zip(idx, results):
                    outputs[k] = cut_at_stops(res.text, untils[k])
        for req, text in zip(requests, outputs):
            self.cache_hook.add_partial("generate_until", req.args, text)
        return outputs  # type: ignore[return-value]


# --- registration ------------------------------------------------------------------------------------
def register() -> None:
    """Register MDLMEvalLM as lm-eval model `mdlm` (idempotent)."""
    from lm_eval.api.registry import model_registry

    model_registry.register(NAME)(MDLMEvalLM)


register()  # importing the model makes `mdlm` known to lm-eval
