"""Process-group hooks of the lm-eval model: rank, world size, all_gather, gather_object and barrier.

lm-eval 0.4 splits each task's documents over `lm.rank` / `lm.world_size` (`Task.build_all_requests`), so
with them set from the process group (`mdlm_bench.dist.current`: accelerate launch or torchrun, gloo on
CPU, nccl on GPU) every rank scores only its share of the log-likelihood and generation requests, and
rank 0 gathers the per-sample results. Left at lm-eval's defaults (rank 0 of 1) every rank repeats them all.
"""

from __future__ import annotations


class ProcessGroupMixin:
    """For an lm_eval.api.model.LM subclass; call `_join_process_group()` in __init__."""

    def _join_process_group(self) -> None:
        import torch.distributed as td

        if td.is_available() and td.is_initialized():  # `mdlm-bench run` has joined it already
            self._rank, self._world_size = td.get_rank(), td.get_world_size()
            return
        from mdlm_bench.dist import current

        d = current()  # `python -m mdlm_bench.evaluate.lm_eval` under a launcher: join it here
        self._rank, self._world_size = d.rank, d.world

    def all_gather(self, tensor):
        """Per-rank values stacked along a new first axis (a 0-d tensor gives shape [world])."""
        if self._world_size <= 1:
            return tensor
        import torch
        import torch.distributed as td

        parts = [torch.zeros_like(tensor) for _ in range(self._world_size)]
        td.all_gather(parts, tensor.contiguous())
        return torch.stack(parts) if tensor.dim() == 0 else torch.cat(parts)

    def gather_object(self, obj, dst: int = 0):
        if self._world_size <= 1:
            return [obj]
        import torch.distributed as td

        out = [None] * self._world_size if self._rank == dst else None
        td.gather_object(obj, out, dst=dst)
        return out

    def barrier(self) -> None:
        if self._world_size > 1:
            import torch.distributed as td

            td.barrier()
