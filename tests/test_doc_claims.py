"""The README's and docs/' claims about the command line, held against the parser itself."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "nuke.md", ROOT / "docs" / "measurements.md"]


def _parser_flags(command: str) -> set[str]:
    sub = next(a for a in build_parser(command)._actions if a.dest == "command").choices[command]
    # the first spelling of each option (aliases such as --color are not the synopsis' business)
    return {a.option_strings[0] for a in sub._actions if a.option_strings and a.option_strings[0] != "-h"}


def _synopsis() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## The command line", 1)[1].split("```", 2)[1]
    flags: dict[str, set[str]] = {}
    command = None
    for line in block.splitlines():
        start = re.match(r"lbsmatte (\w+)", line)
        if start:
            command = start.group(1)
        if command:
            flags.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", line))
    return flags


@pytest.mark.parametrize("command", ["matte", "demo", "evaluate", "export", "fingerprint"])
def test_readme_synopsis_lists_exactly_the_parsers_flags(command: str) -> None:
    # `lbsmatte <command> --help` and the README's synopsis name the same options
    assert _synopsis()[command] == _parser_flags(command)


def _synopsis_lines() -> dict[tuple[str, ...], str]:
    """The synopsis' line of each command (``("cache", "list")`` for a sub-subcommand), continuations joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## The command line", 1)[1].split("```", 2)[1]
    lines: dict[tuple[str, ...], str] = {}
    key: tuple[str, ...] = ()
    for line in block.splitlines():
        start = re.match(r"lbsmatte (\w+)(?: (list|prune) CACHE)?", line)
        if start:
            key = tuple(word for word in start.groups() if word)
            lines[key] = line
        elif key:
            lines[key] += " " + line.strip()
    return lines


def _cache_parser(command: str):
    sub = next(a for a in build_parser("cache")._actions if a.dest == "command").choices["cache"]
    return next(a for a in sub._actions if a.dest == "cache_command").choices[command]


@pytest.mark.parametrize("command", ["list", "prune"])
def test_readme_cache_synopsis_lists_exactly_the_parsers_flags(command: str) -> None:
    # `lbsmatte cache list|prune --help` and the README's synopsis name the same options
    line = _synopsis_lines()[("cache", command)]
    parser = _cache_parser(command)
    assert set(re.findall(r"--[a-z][a-z-]*", line)) == {
        a.option_strings[0] for a in parser._actions if a.option_strings and a.option_strings[0] != "-h"}


def test_readme_synopsis_shows_several_values_only_where_a_flag_takes_them() -> None:
    # `[--scripts PATH ...]` read as `--scripts a b`, which the parser refuses (one path per
    # --scripts, repeated): `FLAG VALUE ...` must be a flag that takes several values
    subparsers = {("cache", "list"): _cache_parser("list"), ("cache", "prune"): _cache_parser("prune")}
    for key, line in _synopsis_lines().items():
        parser = subparsers.get(key)
        if parser is None:
            if len(key) > 1 or key[0] in ("cache", "train", "weights"):
                continue
            parser = next(a for a in build_parser(key[0])._actions if a.dest == "command").choices[key[0]]
        for flag in re.findall(r"(--[a-z][a-z-]*) [A-Z][A-Z_]* \.\.\.", line):
            action = next(a for a in parser._actions if flag in a.option_strings)
            assert action.nargs in ("+", "*"), f"{flag} of {' '.join(key)} takes one value, not several"


def _documented_commands() -> list[str]:
    lines = []
    for doc in DOCS:
        for block in doc.read_text(encoding="utf-8").split("```")[1::2]:
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.strip()
                if line.startswith("lbsmatte ") and " | " not in line and "..." not in line and "[" not in line:
                    lines.append(line)
                elif "&& lbsmatte " in line:
                    lines.append("lbsmatte " + line.split("&& lbsmatte ", 1)[1])
    return lines


@pytest.mark.parametrize("line", _documented_commands())
def test_documented_command_lines_parse(line: str) -> None:
    # every `lbsmatte ...` example in a fenced block of the README and the Nuke guide is a valid command
    argv = shlex.split(line, comments=True)[1:]
    build_parser(argv[0]).parse_args(argv)



def _documented_script_commands() -> list[list[str]]:
    """The ``python tools/X.py ...`` and ``python bench/X.py ...`` commands of the fenced blocks of
    the README and the measurements it links to, as argv lists from the script on (continuations
    joined; a shell loop's ``$k`` and the device's ``$OUT`` filled in)."""
    commands = []
    blocks = [block for doc in ("README.md", "docs/measurements.md")
              for block in (ROOT / doc).read_text(encoding="utf-8").split("```")[1::2]]
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block).replace("$k", "0").replace("$OUT", "out")
        for match in re.finditer(r"\bpython3? ((?:tools|bench)/\w+\.py\b[^;&|#\n]*)", joined):
            commands.append(shlex.split(match.group(1)))
    return commands


def test_documented_tool_and_bench_command_lines_parse() -> None:
    # the README's tools/ and bench/ commands (the benchmarks, the cross-validation, gpu_train's
    # device command) are parsed by each script's own argparse, stopped before any work: a flag
    # renamed in a script and not in the README fails here rather than at the reader's prompt
    commands = _documented_script_commands()
    scripts = {argv[0] for argv in commands}
    assert {"bench/bench_pipeline.py", "bench/bench_process.py", "tools/cross_validate.py",
            "tools/gpu_train.py", "bench/screens.py", "bench/motionblur.py", "bench/trimaperr.py"} <= scripts, scripts
    probe = (
        "import argparse, json, runpy, sys\n"
        "class Parsed(BaseException): pass\n"
        "def parse_args(self, args=None, namespace=None):\n"
        "    ns, extra = self.parse_known_args(args, namespace)\n"
        "    if extra: self.error('unrecognized arguments: %s' % ' '.join(extra))\n"
        "    raise Parsed()\n"
        "argparse.ArgumentParser.parse_args = parse_args\n"
        "failed = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    sys.argv = argv\n"
        "    try:\n"
        "        runpy.run_path(argv[0], run_name='__main__')\n"
        "        failed.append((argv, 'ran to the end without parsing its arguments'))\n"
        "    except Parsed:\n"
        "        pass\n"
        "    except SystemExit as stop:\n"
        "        failed.append((argv, 'exit %s' % stop.code))\n"
        "print(json.dumps(failed))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(commands)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], done.stderr[-3000:]
    # gpu_train's --job NAME=ARGS are lbsmatte train's arguments (it gives the --out)
    jobs = [argv[argv.index("--job") + 1] for argv in commands if "--job" in argv]
    assert jobs
    for job in jobs:
        build_parser("train").parse_args(["train", "--out", "x"] + shlex.split(job.split("=", 1)[1]))


def test_what_the_documented_commands_write_in_the_checkout_is_ignored_by_git() -> None:
    # a reader runs the examples from the checkout's root: what they write there (the exported
    # modules show_xyz.pt, lbsmatte_nuke14.pt, ...) must not turn up as untracked files, which
    # `git status` lists and a GPU device call carries with the checkout (README, GPU)
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    lines = _documented_commands()
    for doc in DOCS:  # `python -m core.cli ...` is the same command line (the Nuke guide's torch 1.12 export)
        lines += ["lbsmatte " + m for m in re.findall(r"-m core\.cli (.+)", doc.read_text(encoding="utf-8"))]
    written = set()
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        args = build_parser(argv[0]).parse_args(argv)
        for dest in ("out", "json_path", "write_trimap", "run_dir"):
            path = getattr(args, dest, None)
            if path is not None and not Path(path).is_absolute() and not str(path).startswith(".."):
                written.add(str(path))
    assert "show_xyz.pt" in written and "lbsmatte_nuke14.pt" in written, written

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path]).returncode == 0

    # a folder's path is ignored through an entry in it (a pattern such as /runs/ matches folders only)
    assert [p for p in sorted(written) if not (ignored(p) or ignored(p + "/x"))] == []

# -- the cross-validation figures: one measurement, the same wherever it is quoted ---------------

REPORT = ROOT / "docs" / "cross_validation" / "stop50.json"


def _table_rows(header: str) -> dict[tuple[str, str], list[str]]:
    """The README's markdown table that starts with ``header``: (trimap, method) -> its cells."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split(header, 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[1:]:  # below the |---| line
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_readme_held_out_table_is_the_kept_report() -> None:
    import json

    report = json.loads(REPORT.read_text(encoding="utf-8"))
    rows = _table_rows("| trimap | method | SAD | MSE | Grad | Conn |")
    checked = 0
    for (trimap, method), cells in rows.items():
        method = method.split(" (")[0]
        scores = report["both_trimaps"] if trimap == "both" else report["means"][trimap]
        if method not in scores or cells[1] == "":
            continue  # the nested-choice rows come from report.md's grid table
        s = scores[method]
        assert cells == [f"{s['sad']:.2f}", f"{s['mse']:.4f}", f"{s['grad']:.2f}", f"{s['conn']:.2f}"], (trimap, method)
        checked += 1
    assert checked == 15


def test_readme_shared_backdrop_figures_are_the_kept_folds_scores() -> None:
    """(d) of what the nesting does not cover: LBSMatte / no networks over the held-out objects
    whose backdrop another fold trains on, and over the others, from the folds' kept evaluations."""
    import json

    import numpy as np

    frames: dict[str, list[tuple[float, float, float, float]]] = {}
    for fold in sorted((ROOT / "docs" / "cross_validation" / "folds").glob("fold*")):
        evaluation = json.loads((fold / "evaluation.json").read_text(encoding="utf-8"))
        for block in evaluation["variants"].values():
            for name, s in block["images"].items():
                frames.setdefault(name, []).append((s["lbsmatte"]["sad"], s["lbsmatte"]["grad"],
                                                    s["no_networks"]["sad"], s["no_networks"]["grad"]))
    shared = {"GT04", "GT06", "GT07", "GT19", "GT22", "GT24", "GT25", "GT27"}

    def ratios(names: set[str]) -> str:
        rows = np.array([f for n in sorted(names) for f in frames[n]])
        return f"{rows[:, 0].mean() / rows[:, 2].mean():.3f} / {rows[:, 1].mean() / rows[:, 3].mean():.3f}"

    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    others = set(frames) - shared
    assert len(frames) == 18 and len(others) == 10
    assert (f"LBSMatte / no networks is {ratios(shared)} (SAD / Grad) over the 8 objects' 16 frames and "
            f"{ratios(others)} over the other 10 ({ratios(others - {'GT16'})} without GT16)") in text


def test_readme_composites_table_is_the_kept_report() -> None:
    import json

    report = json.loads(REPORT.read_text(encoding="utf-8"))["composites"]
    rows = _table_rows("| trimap | method | alpha SAD | FG SAD | BG SAD |")
    names = {"closed_form + multilevel foreground": "closed_form", "the plate itself": "plate"}
    assert len(rows) == 10
    for (trimap, method), cells in rows.items():
        s = report[trimap][names.get(method, method)]
        alpha = f"{s['sad']:.2f}" if "sad" in s else "—"
        assert cells == [alpha, f"{s['fg_sad']:.2f}", f"{s['bg_sad']:.2f}"], (trimap, method)


def test_shipped_manifest_carries_the_kept_report_and_its_choice() -> None:
    import json

    from core.weights import load_bundle

    manifest = load_bundle("default").manifest
    report = json.loads(REPORT.read_text(encoding="utf-8"))
    # "docs/cross_validation/stop50.json is stop 50's report.json", attached by --ship
    assert manifest["training"]["cross_validation"] == report
    chosen = manifest["refinement"]["chosen_on"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    # the pooled, in-sample figure the README quotes for the shipped choice
    assert f"in-sample figure and not a result: {chosen['sad']:.2f} / {chosen['grad']:.2f}" in text


def test_shipped_and_fold_manifests_record_the_recipe_they_were_trained_with() -> None:
    # the recipe (core.training.cli._composite_batches) jitters the foreground network's composites
    # and cuts the photographs' crops with their own trimaps for half of them, at >= half scale
    from core.training.cli import JITTER_NOTE
    from core.weights import load_bundle

    folds = ROOT / "docs" / "cross_validation" / "folds"
    for bundle in ["default", *(str(folds / f"fold{k}" / "bundle") for k in range(3))]:
        data = load_bundle(bundle).manifest["training"]["data"]
        assert data["jitter"] == JITTER_NOTE, bundle
        assert (data["real_photos"]["own_trimaps"], data["real_photos"]["min_scale"]) == (0.5, 0.5), bundle


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_shipped_refinement_is_quoted_as_the_manifest_records_it() -> None:
    # Re-choosing the shipped settings must update every place that quotes them.
    from core.compositing import Settings
    from core.weights import load_bundle

    r = load_bundle("default").manifest["refinement"]
    d = Settings()
    readme = _flat((ROOT / "README.md").read_text(encoding="utf-8"))
    nuke = _flat((ROOT / "docs" / "nuke.md").read_text(encoding="utf-8"))
    gizmo = (ROOT / "gizmos" / "LBSMatte.gizmo").read_text(encoding="utf-8")
    rounds = f"{r['rounds']} round{'s' if r['rounds'] != 1 else ''}"
    assert (f"{rounds}, λ = {r['smoothing']:.0e}, σ² = {r['confidence_scale']:g}, tolerance {r['tolerance']:.0e}, "
            f"κ = {r['knn']:g}, levels {r['black_point']:g} / {r['white_point']:g} for the shipped bundle; "
            f"{d.rounds} rounds, λ = {d.smoothing:.0e}, σ² = {d.confidence_scale:g}, tolerance {d.tolerance:.0e}, "
            "no KNN term, no levels for a bundle that records none").replace("e-0", "e-") in readme
    assert f"({r['tolerance']:.0e} for the shipped bundle".replace("e-0", "e-") in readme
    assert f"within {r['knn_band']} px of them (the shipped bundle's band" in readme
    assert f"{r['rounds']} for the shipped bundle" in nuke and f"({r['rounds']} for the shipped bundle)" in gizmo
    assert f"{r['smoothing']:g} for the shipped bundle" in nuke
    assert f"`w_B / w_F` = {r['agree_ratio']:.0e}".replace("e-0", "e-") in readme
    help_text = _flat(" ".join(a.help or "" for a in next(
        a for a in build_parser("matte")._actions if a.dest == "command").choices["matte"]._actions))
    assert f"{r['knn_band']} px for the shipped bundle" in help_text
    assert f"stride, {r['knn_stride']} for the shipped bundle" in help_text


def test_the_trimap_channel_auto_rule_is_stated_as_normalise_trimap_applies_it() -> None:
    # The knob's tooltip and docs/nuke.md said "auto: alpha when it has one": a trimap in rgb with
    # an opaque alpha (a Read's, a paint node's) would read as all foreground. normalise_trimap
    # skips a constant alpha, and the text must say so.
    import numpy as np

    from core.trimap import normalise_trimap

    grey = np.array([[0.0, 0.5, 1.0]], np.float32)
    opaque = np.concatenate([np.repeat(grey[..., None], 3, axis=2), np.ones((1, 3, 1), np.float32)], axis=2)
    assert normalise_trimap(opaque).tolist() == [[0.0, 0.5, 1.0]]
    gizmo = (ROOT / "gizmos" / "LBSMatte.gizmo").read_text(encoding="utf-8")
    tooltip = re.search(r'addUserKnob \{4 trimap_channel [^}]* t "([^"]*)"', gizmo).group(1)
    nuke = (ROOT / "docs" / "nuke.md").read_text(encoding="utf-8")
    row = next(line for line in nuke.splitlines() if line.startswith("| trimap channel |"))
    for text in (tooltip, row):
        assert "alpha when it varies" in text and "constant alpha" in text, text


def test_the_live_nodes_trimap_channel_says_an_rgb_trimap_file_needs_red() -> None:
    # LBSMatteLive has no 'auto' (its default is alpha): a painted RGB trimap's alpha (none, read
    # as 0, or an opaque auto alpha) gave an all-background or all-foreground matte, and neither
    # the tooltip nor docs/nuke.md said to pick red for it.
    gizmo = (ROOT / "gizmos" / "LBSMatteLive.gizmo").read_text(encoding="utf-8")
    tooltip = re.search(r'addUserKnob \{4 trimap_channel [^}]* t "([^"]*)"[^}]*M \{alpha red\}', gizmo).group(1)
    nuke = _flat((ROOT / "docs" / "nuke.md").read_text(encoding="utf-8"))
    section = nuke[nuke.index("### 3. Use it: `LBSMatteLive`"):nuke.index("### Which torch to export with")]
    assert "red: a trimap read from an RGB file" in tooltip and "all background or all foreground" in tooltip
    assert "trimap read from an RGB file" in section and "choose `red` for it" in section


def test_ci_runs_the_readmes_test_command_and_nothing_else() -> None:
    # README: "CI (.ci/run) runs exactly this command on a clean clone." Besides it, the script
    # only stops at the first error and runs from the clone's root: no variable a reader who
    # copies the command would not have set (QT_QPA_PLATFORM was; the panel's test sets it itself).
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("**Install and run the tests:**", 1)[1].split("```", 2)[1]
    command = block.split("\n", 1)[1].strip()
    assert command.startswith("python3 -m venv ") and command.endswith("&& python -m pytest"), command
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert script[0] == "#!/usr/bin/env bash"
    steps = [line for line in script if line.strip() and not line.lstrip().startswith("#")]
    assert steps == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', command]


def test_the_readmes_sequence_names_are_read_as_it_says() -> None:
    # A '#' in OUT's folder was taken literally without the README saying so; the names it says
    # are refused are, and those it says to use instead are read.
    from core import io
    from core.errors import InputError

    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    claim = re.search(r"`--out (\S+)` writes frame (\d+) to `(\S+)`", text)
    assert claim, "the README says where a '#' in OUT's folder writes"
    assert io.frame_path(claim.group(1), int(claim.group(2))) == Path(claim.group(3))
    assert "#" in Path(claim.group(3)).parent.name
    for refused, renamed in (("plate-v2-####.exr", "plate-v2_####.exr"), ("plate@2x.####.exr", "plate_2x.####.exr"),
                             ("plate2####.exr", "plate2.####.exr")):
        assert f"`{refused}`" in text and f"`{renamed}`" in text
        with pytest.raises(InputError, match=re.escape(renamed)):
            io.has_frame_token(refused)
        assert io.has_frame_token(renamed)


def test_the_readmes_python_example_writes_the_files_lbsmatte_matte_writes(tmp_path: Path, monkeypatch) -> None:
    # The example wrote an sRGB plate's result with write_matte_exr: an EXR whose FG, BG and RGB
    # held sRGB-encoded values, which Nuke reads as linear (the demo's known FG 0.29 off, the band's
    # BG up to 5.4), not the scene-linear layers lbsmatte matte writes from the same plate. Each
    # file it writes must be the command line's from the plate it read: matte.1001.* from
    # plate.1001.exr, matte.* from the demo's image.png.
    import numpy as np
    import torch

    from core import cli
    from core.colour import to_linear
    from core.io import read_image, write_image

    demo = ROOT / "core" / "examples" / "demo"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    example = block.split("matter = core.Matter(", 1)[0].replace("core/examples/demo/", f"{demo.as_posix()}/")
    monkeypatch.chdir(tmp_path)
    write_image("plate.1001.exr", to_linear(read_image(demo / "image.png").rgb(), "srgb"), ["R", "G", "B"],
                pixel_type="float")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(example, "README.md (Python API)", "exec"), {})
        written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("matte."))
        assert written, "the README's example writes no matte file"
        for name in written:
            plate = "plate.1001.exr" if ".1001." in name else str(demo / "image.png")
            out = "cli" + name[len("matte"):]
            assert cli.main(["matte", "--plate", plate, "--trimap", str(demo / "trimap.png"), "--out", out,
                             "--no-progress"]) == 0
            ours, theirs = read_image(name), read_image(out)
            assert ours.channels == theirs.channels, name
            assert np.array_equal(ours.pixels, theirs.pixels), (name, float(np.abs(ours.pixels - theirs.pixels).max()))
    finally:
        torch.set_num_threads(previous)


# -- exit codes: the tables say what the code returns ---------------------------------------------


def _status_table(doc: Path, heading: str) -> dict[int, str]:
    """The markdown table after ``heading`` in ``doc``: exit status -> its meaning."""
    text = doc.read_text(encoding="utf-8").split(heading, 1)[1]
    table = text.split("| --- | --- |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip().strip("|").split("|", 1) for line in table.strip().splitlines()]
    return {int(code): meaning.strip() for code, meaning in rows}


def test_the_readmes_exit_codes_are_the_commands_own() -> None:
    # every code in the table is one of core.cli's EXIT_* (train's 3: core.training.cli.EXIT_STOPPED),
    # as docs/CONTRACTS.md says, and every one of them is in the table
    import core.cli
    from core.training.cli import EXIT_STOPPED

    table = _status_table(ROOT / "README.md", "### Exit codes")
    codes = {value for name, value in vars(core.cli).items() if name.startswith("EXIT_")} | {EXIT_STOPPED}
    assert set(table) == codes
    assert "SIGTERM" in table[core.cli.EXIT_TERMINATED] and "Ctrl-C" in table[core.cli.EXIT_INTERRUPTED]


def test_the_readme_says_which_signals_stop_a_training_with_exit_3() -> None:
    # train and finetune take SIGTERM and Ctrl-C over while they train: a checkpoint and exit 3,
    # not the 143/130 of every other command, and the table's 3 row says so
    from core.training.cli import EXIT_STOPPED
    from core.training.train import _StopFlag

    said = {"SIGTERM": "SIGTERM", "SIGINT": "Ctrl-C"}
    row = _status_table(ROOT / "README.md", "### Exit codes")[EXIT_STOPPED]
    assert [name for name in _StopFlag.SIGNALS if said[name] not in row] == []


def test_the_nuke_guides_exit_statuses_are_batch_pys() -> None:
    from nuke_plugin import batch

    table = _status_table(ROOT / "docs" / "nuke.md", "| exit status | meaning |")
    codes = {value for name, value in vars(batch).items() if name.startswith("EXIT_")}
    assert set(table) == codes
    assert "SIGTERM" in table[batch.EXIT_TERMINATED] and "Ctrl-C" in table[batch.EXIT_INTERRUPTED]


def test_the_readme_says_what_weights_show_prints_for_a_bundle_without_terms() -> None:
    # `lbsmatte train` on a show's own data writes no training_data_terms: the README quotes what
    # `weights show` prints then
    from core.weights import data_terms_summary

    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    word = re.search(r"\(`weights show`: `([^`]+)`\)", text)
    assert word, "the README's Licences says what `weights show` prints for a bundle recording no terms"
    assert data_terms_summary({}).startswith(word.group(1))


def test_the_readmes_exposure_and_grain_tables_quote_one_run_of_the_same_bundle() -> None:
    # The grain table's clean column and the exposure table's ×1 column are the same matte (the same
    # halved, linearised photo at ×1 with no grain), so a bundle or refinement change that re-measures
    # one table and not the other leaves them disagreeing.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = re.compile(r"^\s*\| (GT\d\d, Trimap\d) \| (.+) \|$", re.M)

    def table(header: str) -> dict[str, list[str]]:
        start = readme.index(header)
        block = readme[start: readme.index("\n\n", start)]
        return {m.group(1): [c.strip() for c in m.group(2).split("|")] for m in row.finditer(block)}

    exposure = table("| photo, trimap | ×1/16 | ×1/4 | ×1 | ×4 |")
    grain = table("| photo, trimap | clean | subtle | heavy | very heavy | correlated |")
    shared = sorted(set(exposure) & set(grain))
    assert len(shared) >= 5
    for name in shared:
        assert exposure[name][2] == grain[name][0].split(" (")[0], name


def _measurements_table(header: str) -> dict[str, list[list[float]]]:
    """docs/measurements.md's table under ``header``: its leading words (``GT04, blue, spill``; an
    object's nickname dropped) -> each further cell's numbers (``a / b / c``)."""
    text = (ROOT / "docs" / "measurements.md").read_text(encoding="utf-8")
    block = text.split(header, 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in block.strip().splitlines()[2:]:  # below the header's rest and the |---| line
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        n = next(i for i, c in enumerate(cells) if re.fullmatch(r"[\d.]+( / [\d.]+)*", c))
        rows[", ".join([cells[0].split(" (")[0], *cells[1:n]])] = [[float(x) for x in c.split(" / ")] for c in cells[n:]]
    return rows


def _span(values: list[float], sign: str = "") -> str:
    """``values`` (ratios) as the prose quotes them: ``+29 % to +98 %`` (``sign`` before each);
    losses all, the smaller first: ``−3 % to −8 %``."""
    def pct(v: float) -> str:
        p = round(100 * (v - 1))
        return f"{sign}{p} %" if p >= 0 or not sign else f"−{-p} %"
    low, high = min(values), max(values)
    return f"{pct(high)} to {pct(low)}" if high < 1 else f"{pct(low)} to {pct(high)}"


def _prose(path: str) -> str:
    return " ".join((ROOT / path).read_text(encoding="utf-8").split())


def test_the_motion_blur_prose_reads_its_table() -> None:
    # Each percentage the docs and the README quote is the table's; re-measuring the table (a new
    # bundle, another refinement) without reading the prose again breaks this.
    rows = _measurements_table("| object, blur | SAD LBSMatte / closed-form / KNN |")
    objects = sorted({name.split(",")[0] for name in rows})
    assert len(rows) == 4 * len(objects) == 12
    ours, cf, behind, fg_better = [], [], [], 0
    for name, (sad, fg) in rows.items():
        obj = name.split(",")[0]
        sharp = rows[f"{obj}, sharp"][0]
        if not name.endswith("sharp"):
            ours.append(sad[0] / sharp[0])
            cf.append(sad[1] / sharp[1])
        if sad[0] > sad[1]:
            behind.append(name)
        fg_better += fg[0] < fg[1]
    docs, readme = _prose("docs/measurements.md"), _prose("README.md")
    assert f"raised LBSMatte's SAD by {_span(ours)} (closed-form's by {_span(cf)})" in docs
    assert f"SAD {_span(ours, '+')}, closed-form's {_span(cf, '+')}" in readme
    assert behind == ["GT04, motion 40 diagonal", "GT25, motion 40 diagonal"], behind
    assert "(GT04 and GT25 with 40 px of diagonal motion;" in readme
    assert fg_better == 12 and "closed-form + multilevel foreground in all 12 rows" in docs


def test_the_trimap_error_prose_reads_its_table() -> None:
    rows = _measurements_table("| photo | clean | known FG grown | known BG grown |")
    assert sorted(rows) == ["GT01", "GT13", "GT24"]

    def ratios(fault: int, method: int = 0) -> list[float]:
        return [cells[fault][method] / cells[0][method] for cells in rows.values()]

    docs, readme = _prose("docs/measurements.md"), _prose("README.md")
    fg_grown, bg_grown, wide = ratios(1), ratios(2), ratios(4)
    assert f"SAD {_span(fg_grown, '+')} and gradient error" in docs
    assert f"against closed-form's {_span(ratios(1, 1), '+')} and KNN's {_span(ratios(1, 2), '+')}" in docs
    assert f"costs it only {_span(bg_grown, '+')}." in docs
    assert f"(SAD {_span(fg_grown, '+')}, gradient error" in readme
    assert f"as far only {_span(bg_grown, '+')}, a band three times too wide up to ×{max(wide):.1f}." in readme
    assert f"LBSMatte ×{wide[1]:.1f} and ×{wide[2]:.1f}, closed-form ×{ratios(4, 1)[1]:.1f} and ×{ratios(4, 1)[2]:.1f}" \
        in docs
    lies = [cells[f][m] - cells[0][m] for cells in rows.values() for f in (5, 6) for m in range(3)]
    assert f"(SAD +{min(lies):.1f} to +{max(lies):.1f})" in docs


def test_the_screen_prose_reads_its_table() -> None:
    rows = _measurements_table("| object | screen | LBSMatte | closed-form | KNN |")
    clean = {name: cells for name, cells in rows.items() if not name.endswith("spill")}
    spill = {name: cells for name, cells in rows.items() if name.endswith("spill")}
    assert len(clean) == len(spill) == 10
    sads = [cells[0][0] for cells in clean.values()]
    below_cf = [2 - cells[0][0] / cells[1][0] for cells in clean.values()]  # "14 % below" as a ratio 1.14
    behind_knn = [name for name, cells in clean.items() if cells[0][0] >= cells[2][0]]
    rise = [cells[0][0] / clean[name.rsplit(",", 1)[0]][0][0] for name, cells in spill.items()]
    cf_rise = [cells[1][0] / clean[name.rsplit(",", 1)[0]][1][0] for name, cells in spill.items()]
    behind = {name: cells[0][0] / min(cells[1][0], cells[2][0]) for name, cells in spill.items()
              if cells[0][0] > min(cells[1][0], cells[2][0])}
    plate_not_worst = [name for name, cells in rows.items() if cells[3][2] < max(cells[3][:2])]
    docs, readme = _prose("docs/measurements.md"), _prose("README.md")
    assert f"alpha SAD is {min(sads):.2f} to {max(sads):.2f}, {_span(below_cf)} below closed-form's" in docs
    assert f"alpha SAD is {min(sads):.2f} to {max(sads):.2f}, {_span(below_cf)} below closed-form's" in readme
    assert behind_knn == ["GT25, blue"], behind_knn
    assert "(GT25: 1.34 against KNN's 1.32)" in readme
    assert f"LBSMatte's SAD rose by {_span(rise)} (closed-form's by {_span(cf_rise, '+')})" in docs
    assert f"(LBSMatte's SAD rose by {_span(rise)})" in readme
    assert list(behind) == ["GT03, blue, spill"], behind
    assert f"at worst {round(100 * (behind['GT03, blue, spill'] - 1))} % behind closed-form" in readme
    assert plate_not_worst == ["GT24, green, spill", "GT24, blue, spill"], plate_not_worst
    assert "worst F in every row but GT24's two with spill" in docs and "worst in every case but two" in readme
    assert sum(cells[3][1] < cells[3][0] for cells in clean.values()) == 7 and "seven of the ten rows" in docs
    assert all(cells[3][0] < cells[3][1] for cells in spill.values()) and "the closer on all ten" in docs
    # the same objects over their own photographs: the README's Grain table, clean column
    grain = readme.split("| photo, trimap | clean | subtle | heavy |", 1)[1]
    own = [float(re.search(rf"\| {name}, Trimap1 \| ([\d.]+) ", grain).group(1)) for name in ("GT03", "GT04")]
    assert f"their own photographs score {own[0]:.2f} and {own[1]:.2f}" in docs


def _weights_help(command: str) -> str:
    sub = next(a for a in build_parser(command)._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if "--weights" in a.option_strings).help or ""


def test_the_readme_names_every_command_that_takes_weights_none() -> None:
    # `lbsmatte demo --weights none` prints the "On the demo it scores SAD 3.922" the README quotes,
    # but the README said `none` was for `matte` and `evaluate` only, and the demo's --help said nothing
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`(\w+)`", re.search(r"`--weights none` \(on ([^)]*)\)", text).group(1)))
    takes_none = {c for c in ("matte", "evaluate", "demo", "export", "fingerprint") if "'none'" in _weights_help(c)}
    assert listed == takes_none == {"matte", "evaluate", "demo"}
    assert "`lbsmatte demo --weights none`" in text


def test_the_readmes_evaluate_json_weights_keys_are_the_records() -> None:
    # the README names the keys of evaluate --json's `weights` (a script reads them): they must be there
    from types import SimpleNamespace

    from core.evaluate import _weights_record

    bundle = SimpleNamespace(name="default", path=Path("b"), manifest={"parent": None},
                             manifest_sha256=lambda: "0" * 64)
    record = _weights_record(SimpleNamespace(bundle=bundle, refinement=None, dtype=None, space="auto"))
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = re.sub(r"\s+", " ", text.split("`weights` say what scored them:", 1)[1].split("so that two runs'", 1)[0])
    named = set(re.findall(r"`(\w+)`", sentence)) - {"default"}
    assert "path" in named and named <= set(record), named - set(record)
