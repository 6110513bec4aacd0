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
from mdlm_bench.report.tables import fmt, get  # noqa: E402

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
    for e in nums:
        assert e.text == fmt(get(report, e.get("data-ref"))), e.get("data-ref")

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

    md = (out / "report.md").read_text()
    console = Console(record=True, width=400)
    print_report(report, console)
    shown = console.export_text()
    for t in all_tables(report):
        for row in t.rows:
            for c in row:
                assert cell_text(c).replace("|", "\\|") in md
                assert cell_text(c) in shown


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
    assert rep["findings"] == ["From displaced fraction 0 to 0.1 the mean goes from 1 to 0 for llada."]


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
    assert "base → new: tests" in captured.out and "Findings" in captured.out
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["settings"]["n_resamples"] == 500 and rep["runs"][1]["label"] == "new"


# ------------------------------------------------------------------------------------ real browser
REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "reference" / "report.html"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
SCREEN = (1280, 900)
# Appended to a copy of the page only: writes the boxes of the top-of-page elements into the DOM,
# which --dump-dom then prints (the report itself holds no script).
PROBE = ('<script>window.addEventListener("load",function(){var o={vw:innerWidth,vh:innerHeight};'
         '["question","headline","sensitivity","forest"].forEach(function(id){var e=document.getElementById(id);'
         'if(e){var r=e.getBoundingClientRect();o[id]=[r.left,r.top,r.right,r.bottom];}});'
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


def _first_screen_boxes(page: Path, tmp: Path) -> dict:
    box = _layout(page, tmp)
    vw, vh = box["vw"], box["vh"]
    for name in ("question", "headline", "sensitivity"):
        left, top, right, bottom = box[name]
        assert 0 <= left and right <= vw + 1 and 0 <= top and bottom <= vh, (name, box[name], vw, vh)
    # the table and the plot sit side by side, not on top of each other
    assert box["headline"][2] <= box["sensitivity"][0] or box["headline"][3] <= box["sensitivity"][1], box
    return box


@pytest.mark.parametrize("which", ["reference", "fixture"])
def test_first_screen_in_chromium_holds_headline_and_sensitivity_plot(which, built, tmp_path):
    """The committed reference report and a fresh one: headline table and sensitivity plot inside the first
    1280x900 screen (DOM boxes from Chromium), no console errors, and a screenshot that shows them there."""
    page = REFERENCE if which == "reference" else built[1] / "report.html"
    box = _first_screen_boxes(page, tmp_path)
    shot = tmp_path / "shot.png"
    p = _chromium(page, f"--screenshot={shot}")
    assert not _console_messages(p.stderr), _console_messages(p.stderr)
    import matplotlib.image

    img = matplotlib.image.imread(str(shot))[..., :3]  # [H, W, 3] floats in [0, 1]
    assert img.shape[:2] == (SCREEN[1], SCREEN[0]), img.shape

    def crop(name):
        left, top, right, bottom = (int(round(v)) for v in box[name])
        return img[top:bottom, left:right]

    table, plot = crop("headline"), crop("sensitivity")
    ink = table.min(axis=2) < 0.6  # text and cell borders
    assert 0.03 < ink.mean() < 0.6, f"the headline box does not look like a table ({ink.mean():.3f} ink)"
    rules = (table.min(axis=2) < 0.9).mean(axis=1) > 0.9  # the horizontal cell borders, as pixel rows
    n_rows = len(json.loads(page.with_name("report.json").read_text())["headline"]["comparisons"])
    assert n_rows + 2 <= rules.sum() <= 3 * (n_rows + 2), f"{rules.sum()} border lines for {n_rows} rows"
    colour = (plot.max(axis=2) - plot.min(axis=2)) > 0.25  # the curves and their CI bands
    assert colour.mean() > 0.01, f"no coloured curve in the sensitivity box ({colour.mean():.4f})"


def test_console_error_check_can_fail(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefined_function()</script></body></html>")
    msgs = _console_messages(_chromium(page, "--dump-dom").stderr)
    assert len(msgs) == 1 and "undefined_function is not defined" in msgs[0]
