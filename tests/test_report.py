"""`mdlm-bench report`: rendering, consistency of HTML/markdown with report.json, summaries, bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_runs import write_judgment, write_run, write_sweep  # noqa: E402

from mdlm_bench import cli  # noqa: E402
from mdlm_bench.errors import UserError  # noqa: E402
from mdlm_bench.report import ReportSettings, build_report, print_report  # noqa: E402
from mdlm_bench.report.tables import P_KEYS, fmt, fmt_fixed, fmt_p, get  # noqa: E402

FAST = ReportSettings(n_resamples=1000, n_permutations=1000)
N = 300


def _planted(tmp: Path):
    """A and B on 300 items: B gets exact match on 20% more items and +0.3 on a rating; judged bench."""
    rng = np.random.default_rng(0)
    em_a = (rng.random(N) < 0.4).astype(float)
    em_b = np.where((em_a == 0) & (rng.random(N) < 0.35), 1.0, em_a)
    r_a = rng.normal(5, 1, N)
    r_b = r_a + 0.3 + rng.normal(0, 0.5, N)
    noise_b = rng.normal(0, 1, N)
    types = {"exact_match": "binary", "rating": "continuous", "noise": "continuous"}
    a = write_run(tmp / "A", {"synth_copy": {"exact_match": em_a, "rating": r_a, "noise": np.zeros(N)}},
                  model="llada", types=types)
    b = write_run(tmp / "B", {"synth_copy": {"exact_match": em_b, "rating": r_b, "noise": noise_b * 0.01}},
                  model="slack[ctc]", types=types, decoding={"steps": 128, "remasking": "random"})
    write_judgment(a, "mt_bench", rng.choice([0.0, 0.5, 1.0], 60))
    write_judgment(b, "mt_bench", rng.choice([0.0, 0.5, 1.0], 60, p=[0.15, 0.25, 0.6]))
    return a, b


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    a, b = _planted(tmp)
    s1 = write_sweep(tmp / "sw1", "llada", {0.0: {"exact_match": [1, 1, 0, 1]}, 0.1: {"exact_match": [1, 0, 0, 1]}})
    s2 = write_sweep(tmp / "sw2", "slack", {0.0: {"exact_match": [1, 1, 1, 1]}, 0.1: {"exact_match": [1, 1, 0, 1]}})
    out = tmp / "out"
    report = build_report([a, b], [s1, s2], out, settings=FAST)
    return report, out


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_report_files_and_json_roundtrip(built):
    report, out = built
    for name in ("report.md", "report.json", "report.html", "plots/forest.png", "plots/sensitivity.png",
                 "plots/win_rates.png"):
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["provenance"]["versions"]["python"] and on_disk["digest"]
    assert on_disk["runs"][1]["models"] == ["slack[ctc]"] and on_disk["runs"][0]["checkpoints"] == ["ckpt/llada"]


def test_html_is_well_formed_and_every_number_equals_report_json(built):
    _, out = built
    text = (out / "report.html").read_text()
    report = json.loads((out / "report.json").read_text())
    root = ET.fromstring(text.replace("<!DOCTYPE html>", "", 1))  # raises if not well formed
    ns = "{http://www.w3.org/1999/xhtml}"
    imgs = root.findall(f".//{ns}img")
    assert len(imgs) == 3 and all(i.get("src").startswith("data:image/png;base64,") for i in imgs)
    assert not re.search(r"""(src|href)=["'](?!data:)""", text), "the report must not load anything"

    nums = [e for e in root.iter() if e.get("class") == "num"]
    assert len(nums) > 100
    for e in nums:  # the JSON value, scaled (percentage points) and rounded to its column's decimals
        value, ref = get(report, e.get("data-ref")), e.get("data-ref")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = value * float(e.get("data-scale") or 1)
        if ref.rsplit("/", 1)[-1] in P_KEYS:
            assert e.text == fmt_p(value), ref
        elif "." in e.text and re.fullmatch(r"-?\d+\.\d+", e.text):
            assert e.text == fmt_fixed(value, len(e.text.split(".")[1])), ref
        else:
            assert e.text in (fmt(value), fmt_fixed(value, 0)), ref

    # Everything else with a digit in it is text that report.json holds as a string.
    strings = list(_strings(report))
    for e in root.iter():
        if e.tag in (f"{ns}style", f"{ns}script"):
            continue
        chunks = ([] if e.get("class") == "num" else [e.text]) + [e.tail]
        for chunk in chunks:
            for word in (chunk or "").split():
                word = word.strip(".,;:()")
                if re.search(r"\d", word):
                    assert any(word in s for s in strings), f"'{word}' is not in report.json"


def test_markdown_and_rich_show_the_same_cells(built):
    report, out = built
    from rich.console import Console

    from mdlm_bench.report.tables import all_tables, cell_text

    from mdlm_bench.report.document import document, tables_of

    md = (out / "report.md").read_text()
    console = Console(record=True, width=400)
    print_report(report, console)
    shown = console.export_text()
    for t in all_tables(report):
        for row in t.rows:
            for c in row:
                assert cell_text(c).replace("|", "\\|") in md
    terminal = tables_of(document(report, terminal=True))
    assert terminal and len(terminal) < len(all_tables(report))  # the long tables stay in the files
    for t in terminal:
        for row in t.rows:
            for c in row:
                assert cell_text(c) in shown
    assert "report.md" in shown


def test_planted_effects_detected_and_summarised(built):
    report, _ = built
    rows = {r["benchmark"]: r for r in report["comparisons"][0]["benchmarks"]}
    em, rating = rows["synth_copy/exact_match"], rows["synth_copy/rating"]
    assert em["primary_test"] == "mcnemar" and em["significant"] and em["diff"]["ci_low"] > 0
    assert rating["primary_test"] == "permutation" and rating["significant"]
    assert set(rows["judge:mt_bench"]["tests"]) == {"permutation", "wilcoxon", "sign"}
    assert rows["synth_copy/noise"]["significant"] is False
    d, ph = em["diff"], em["p_holm"]
    # The interval shown is the family-wise one: Bonferroni level over the 4 tests Holm corrects over.
    assert d["level"] == pytest.approx(1 - 0.05 / 4) and d["ci95_low"] > d["ci_low"]
    assert em["summary"] == (
        f"B scores {fmt(d['mean'])} higher than A on synth_copy exact match ({fmt(100 * d['level'])}% family CI "
        f"{fmt(d['ci_low'])} to "
        f"{fmt(d['ci_high'])}, McNemar p={fmt(em['p'])}, Holm-corrected p={fmt(ph)}): significant.")
    assert rows["synth_copy/noise"]["summary"].endswith("not significant.")
    assert 1 <= len(report["findings"]) <= 5
    head = {(r["comparison"], r["metric"]): r for r in report["headline"]["comparisons"]}
    assert set(head) == {("A → B", m) for m in ("exact_match", "rating", "noise", "judge:mt_bench")}
    pooled = head[("A → B", "exact_match")]  # one task: the pooled row is the per-task row
    assert pooled["diff"] == pytest.approx(em["diff"]["mean"]) and pooled["n"] == N and pooled["test"] == "mcnemar"
    assert report["findings"][0] == "3 of 4 pooled comparisons differ significantly at alpha 0.05 after Holm correction."
    assert any(f.startswith("Not significant: B scores") and "noise" in f for f in report["findings"])
    # Holm over all tests equals statsmodels on the primary p-values
    from statsmodels.stats.multitest import multipletests

    ps = [r["p"] for r in report["comparisons"][0]["benchmarks"]]
    np.testing.assert_allclose([r["p_holm"] for r in report["comparisons"][0]["benchmarks"]],
                               multipletests(ps, method="holm")[1])
    assert report["corrections"]["n_tests"] == len(ps)
    judge = {j["label"]: j for j in report["judge"]}
    assert judge["B"]["wins"] + judge["B"]["ties"] + judge["B"]["losses"] == 60


def test_swapping_runs_flips_difference_keeps_p(tmp_path):
    a, b = _planted(tmp_path)
    fwd = build_report([a, b], [], tmp_path / "f", settings=FAST)
    bwd = build_report([b, a], [], tmp_path / "b", settings=FAST)
    for x, y in zip(fwd["comparisons"][0]["benchmarks"], bwd["comparisons"][0]["benchmarks"]):
        assert y["diff"]["mean"] == pytest.approx(-x["diff"]["mean"])
        assert y["p"] == pytest.approx(x["p"]) and y["p_holm"] == pytest.approx(x["p_holm"])
        assert (y["effect"]["wins"], y["effect"]["losses"]) == (x["effect"]["losses"], x["effect"]["wins"])


def test_identical_runs_not_significant(tmp_path):
    a, _ = _planted(tmp_path)
    c = tmp_path / "A_copy"
    shutil.copytree(a, c)
    rep = build_report([a, c], [], tmp_path / "out", settings=FAST)
    for r in rep["comparisons"][0]["benchmarks"]:
        assert r["diff"]["mean"] == 0 and r["p"] == 1.0 and r["significant"] is False
        assert r["summary"].endswith(": not significant.") and "score the same" in r["summary"]


def test_mismatched_items_are_reported_not_dropped(tmp_path):
    a = write_run(tmp_path / "a", {"t": {"em": [1, 0] * 10}}, uids=[f"u{i}" for i in range(20)])
    b = write_run(tmp_path / "b", {"t": {"em": [1, 1] * 10}}, uids=[f"u{i}" for i in range(5, 25)])
    write_run(tmp_path / "c", {"t": {"em": [1, 1] * 10}, "other": {"em": [1] * 4}},
              uids=[f"u{i}" for i in range(20)])
    rep = build_report([a, b, tmp_path / "c"], [], tmp_path / "out", settings=FAST)
    row = rep["comparisons"][0]["benchmarks"][0]
    assert row["pairing"] == {"both": 15, "prompts": 15, "rows_a": 15, "rows_b": 15, "only_a": 5, "only_b": 5}
    assert any("14 items present in only one run of a comparison were left unpaired (other/em and t/em)" in f
               for f in rep["findings"]), rep["findings"]
    other = [r for r in rep["comparisons"][1]["benchmarks"] if r["task"] == "other"][0]
    assert other["pairing"] == {"both": 0, "prompts": 0, "rows_a": 0, "rows_b": 0, "only_a": 0, "only_b": 4} \
        and other["p"] is None
    assert "not tested" in other["summary"]
    assert rep["corrections"]["n_tests"] == 2  # one test per comparison on t/em


def test_custom_comparisons_and_labels(tmp_path):
    a, b = _planted(tmp_path)
    rep = build_report([a, b], [], tmp_path / "out", labels=["base", "new"], comparisons=[(1, 0)], settings=FAST)
    c = rep["comparisons"][0]
    assert (c["a"], c["b"], c["label_a"], c["label_b"]) == (1, 0, "new", "base")
    with pytest.raises(UserError, match="pair"):
        build_report([a, b], [], tmp_path / "out", comparisons=[(0, 2)], settings=FAST)
    with pytest.raises(UserError, match="label"):
        build_report([a, b], [], tmp_path / "out", labels=["x"], settings=FAST)


def test_sweep_only_report(tmp_path):
    s = write_sweep(tmp_path / "sw", "llada", {0.0: {"em": [1, 1]}, 0.05: {"em": [1, 0]}, 0.1: {"em": [0, 0]}})
    rep = build_report([], [s], tmp_path / "out", settings=FAST)
    assert [lv["fraction"] for lv in rep["sweeps"][0]["levels"]] == [0.0, 0.05, 0.1]
    assert set(rep["plots"]) == {"sensitivity"}
    assert rep["findings"] == ["From 0% to 10% of tokens displaced the mean goes from 1 to 0 for llada."]


# ----------------------------------------------------------------------------------------- bad input
def _cli(args, capsys):
    rc = cli.main(["report", *map(str, args)])
    err = capsys.readouterr().err.strip()
    return rc, err


def test_bad_input_one_line_exit_2_and_nothing_lost(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t": {"em": [1, 0, 1]}})
    b = write_run(tmp_path / "b", {"u": {"em": [1, 0, 1]}})
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("precious")
    empty = tmp_path / "empty"
    empty.mkdir()
    cont = write_run(tmp_path / "cont", {"t": {"em": [1, 0, 1]}}, types={"em": "continuous"})
    binr = write_run(tmp_path / "bin", {"t": {"em": [1, 0, 1]}}, types={"em": "binary"})
    single = tmp_path / "single"
    pair = tmp_path / "pair"
    write_judgment(single, "mt", [7, 8, 9], kind="single")
    write_judgment(pair, "mt", [1, 0.5, 0])
    cases = [
        ([a, b], "share no (task, uid) prompts"),
        ([a, empty], "no scored rows"),
        ([a, tmp_path / "missing"], "does not exist"),
        ([cont, binr], "is continuous in 'cont' but binary in 'bin'"),
        ([pair, single], "is pairwise in 'pair' but single in 'single'"),
        ([a, a, "--sweep", empty], "has no sweep.json"),
        ([], "nothing to report"),
    ]
    for args, msg in cases:
        rc, err = _cli([*args, "--out", out, "--resamples", 200, "--permutations", 200], capsys)
        assert rc == 2, args
        assert err.startswith("error: ") and msg in err and "\n" not in err, err
        assert (out / "report.json").read_text() == "precious"
    rc, err = _cli([a, a, "--ci-level", 1.5], capsys)
    assert rc == 2 and "ci_level" in err


def test_inferred_binary_yields_to_continuous(tmp_path):
    a = write_run(tmp_path / "a", {"t": {"d": [0, 1, 1, 0]}}, metrics_json=False)
    b = write_run(tmp_path / "b", {"t": {"d": [0.5, 2, 1, 3]}}, metrics_json=False)
    rep = build_report([a, b], [], tmp_path / "out", settings=FAST)
    assert rep["comparisons"][0]["benchmarks"][0]["kind"] == "continuous"


def test_cli_end_to_end(tmp_path, capsys):
    a, b = _planted(tmp_path)
    rc = cli.main(["report", str(a), str(b), "--out", str(tmp_path / "o"), "--resamples", "500",
                   "--permutations", "500", "--label", "base", "new"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Pooled over tasks" in captured.out and "Findings" in captured.out
    assert "base → new " in captured.out  # the label is never broken over lines
    long = [line for line in captured.out.splitlines() if len(line) > 100 and "report.md" not in line]
    assert not long, long  # a pipe gets 100 columns, like a 100-column terminal (rich would wrap at 80)
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["settings"]["n_resamples"] == 500 and rep["runs"][1]["label"] == "new"


def test_report_fits_100_columns_in_a_terminal(built):
    """What a 100-column terminal shows: no line over 100 columns, the benchmark names whole."""
    import io

    from rich.console import Console

    report, _ = built
    buf = io.StringIO()
    print_report(report, Console(file=buf, width=100, force_terminal=True, color_system=None))
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 100
    assert len(lines) < 60, len(lines)
    assert any("A → B" in line and "exact_match" in line for line in lines)


# ------------------------------------------------------------------------------------ real browser
REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "reference" / "report.html"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
SCREEN = (1280, 900)
# Appended to a copy of the page only: writes the boxes of the top-of-page elements into the DOM,
# which --dump-dom then prints (the report itself holds no script).
PROBE = ('<script>window.addEventListener("load",function(){var o={vw:innerWidth,vh:innerHeight,words:[]};'
         '["question","verdicts","verdict-a","verdict-b","sensitivity","headline","forest"].forEach(function(id){'
         'var e=document.getElementById(id);'
         'if(e){var r=e.getBoundingClientRect();o[id]=[r.left,r.top,r.right,r.bottom];}});'
         'document.querySelectorAll("section.claim p.word").forEach(function(e){o.words.push(e.textContent);});'
         'var p=document.createElement("pre");p.id="layout";p.textContent=JSON.stringify(o);'
         'document.body.appendChild(p);});</script>')


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium); the browser test needs it")
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={SCREEN[0]},{SCREEN[1]}", "--enable-logging=stderr", "--v=0", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=120, check=True)


def _console_messages(stderr: str) -> list:
    """Page console output (errors, failed loads, uncaught exceptions) as Chromium logs it."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _layout(page: Path, tmp: Path) -> dict:
    probe = tmp / f"probe-{page.parent.name}.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    p = _chromium(probe, "--dump-dom")
    assert not _console_messages(p.stderr), _console_messages(p.stderr)
    found = re.search(r'<pre id="layout">(.*?)</pre>', p.stdout)
    assert found, "the layout probe did not run"
    return json.loads(found.group(1))


def _first_screen_boxes(page: Path, tmp: Path, verdicts: list) -> dict:
    box = _layout(page, tmp)
    vw = box["vw"]
    first = ["question", "sensitivity"] + (["verdicts"] + [f"verdict-{v['tag']}" for v in verdicts] if verdicts else [])
    for name in first:
        left, top, right, bottom = box[name]
        assert 0 <= left and right <= vw + 1 and 0 <= top and bottom <= SCREEN[1], (name, box[name], vw)
    # the order of the first screen: question, verdict boxes, drop plot, then the pooled table
    order = ["question"] + (["verdicts"] if verdicts else []) + ["sensitivity", "headline"]
    tops = [box[name][1] for name in order]
    assert tops == sorted(tops), (order, tops)
    # the pooled table follows the verdicts and the drop plot (on or just below the first screen)
    assert box["words"] == [v["verdict"] for v in verdicts], box["words"]
    return box


@pytest.mark.parametrize("which", ["reference", "fixture"])
def test_first_screen_in_chromium_holds_verdicts_and_drop_plot(which, built, tmp_path):
    """The committed reference report and a fresh one: in the first 1280x900 screen (DOM boxes from Chromium)
    the question, a verdict box per claim with its verdict (reference), the drop-under-shift plot and the
    start of the pooled table, in that order; no console errors; and a screenshot that shows them there."""
    page = REFERENCE if which == "reference" else built[1] / "report.html"
    report = json.loads(page.with_name("report.json").read_text())
    verdicts = report.get("verdicts") or []
    assert bool(verdicts) == (which == "reference")
    box = _first_screen_boxes(page, tmp_path, verdicts)
    shot = tmp_path / "shot.png"
    p = _chromium(page, f"--screenshot={shot}")
    assert not _console_messages(p.stderr), _console_messages(p.stderr)
    import matplotlib.image

    img = matplotlib.image.imread(str(shot))[..., :3]  # [H, W, 3] floats in [0, 1]
    assert img.shape[:2] == (SCREEN[1], SCREEN[0]), img.shape

    def crop(name):
        left, top, right, bottom = (int(round(v)) for v in box[name])
        return img[max(0, top):min(bottom, SCREEN[1]), left:right]

    plot = crop("sensitivity")
    colour = (plot.max(axis=2) - plot.min(axis=2)) > 0.1  # the curves and their CI bands
    assert colour.mean() > 0.02, f"no coloured curve in the drop plot ({colour.mean():.4f})"
    # one panel per model: each third of the plot holds its own hue (bands told apart by panel, not overlap)
    n = len(report["sweeps"])
    hues = []
    for k in range(n):
        part = plot[:, k * plot.shape[1] // n:(k + 1) * plot.shape[1] // n]
        sat = (part.max(axis=2) - part.min(axis=2)) > 0.1
        hues.append(tuple(np.round(part[sat].mean(axis=0), 1)) if sat.any() else None)
    assert None not in hues and len(set(hues)) == n, hues
    for v in verdicts:  # each box: text (ink) and a border in its verdict's colour
        b = crop(f"verdict-{v['tag']}")
        ink = b.min(axis=2) < 0.5
        assert 0.01 < ink.mean() < 0.6, f"verdict box {v['tag']} holds no text ({ink.mean():.3f})"
        want = {"holds": (0.10, 0.50, 0.22), "holds in part": (0.69, 0.53, 0.0),
                "does not hold": (0.71, 0.14, 0.09)}[v["verdict"]]
        edge = b[:, :4].reshape(-1, 3)
        assert (np.abs(edge - np.array(want)).max(axis=1) < 0.12).mean() > 0.3, f"box {v['tag']}: no verdict border"
    head = crop("headline")  # the part of the pooled table on the first screen, if any
    assert head.size == 0 or (head.min(axis=2) < 0.6).mean() > 0.02, "no pooled table under the plot"


def test_console_error_check_can_fail(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefined_function()</script></body></html>")
    msgs = _console_messages(_chromium(page, "--dump-dom").stderr)
    assert len(msgs) == 1 and "undefined_function is not defined" in msgs[0]


def test_verdict_box_reads_prompts_and_mdd_when_the_statistics_record_them():
    """The verdict table shows prompts and the minimum detectable difference where report.json has them
    (`n_prompts`, `mdd`), and paired rows without an MDD column where it does not."""
    from mdlm_bench.report.document import Verdicts, document
    from mdlm_bench.report.tables import cell_text
    from mdlm_bench.report.verdicts import claim_verdicts, verdict_sentence, verdict_table

    def drop(level, m, **extra):
        return {"comparison": f"drop @{level}: {m} → f", "n": 30, "diff": -0.02, "ci_low": -0.05, "ci_high": 0.01,
                "p_holm": 0.4, "significant": False, **extra}

    claims = [{"claim": "f beats a", "levels": ["0%"], "holds_at": [], "worse_than_some_at": [], "favoured_at": [],
               "verdict": "does not hold"},
              {"claim": "f is more robust", "levels": ["5%"], "holds_at": [], "worse_than_some_at": [],
               "favoured_at": ["5%"], "verdict": "does not hold"}]
    head = {"comparisons": [{"comparison": "a → f, both @0%", "metric": "exact_match", "n": 30, "diff": 0.01,
                             "ci_low": -0.02, "ci_high": 0.04, "p_holm": 1.0, "significant": False}]}
    for extra, cols in (({}, ["rows"]), ({"n_prompts": 10, "mdd": 0.031}, ["prompts", "MDD, pp"])):
        report = {"headline": head, "drops": [drop("5%", "a", **extra)], "settings": {"ci_percent": 95.0}}
        v = claim_verdicts(claims, report, "f", ["a"])
        assert [r["ref"] for r in v[0]["rows"]] == ["/headline/comparisons/0"]
        t = verdict_table(report, v[1])
        names = [cell_text(c) for c in t.columns]
        assert all(c in names for c in cols) and ("MDD, pp" in names) == bool(extra), names
        row = dict(zip(names, [cell_text(c) for c in t.rows[0]]))
        assert row["drop B − A, pp [95% CI]"] == "-2.00 [-5.00, 1.00]" and row["p (Holm)"] == "0.400"
        if extra:
            assert row["prompts"] == "10" and row["MDD, pp"] == "3.10" and "MDD:" in t.note
        else:
            assert row["rows"] == "30"
        assert "Found at no level" in verdict_sentence(v[1]) and "p < 0.05" not in verdict_sentence(v[1])
