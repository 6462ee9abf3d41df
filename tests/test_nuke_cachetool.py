"""``lbsmatte cache list | prune`` (``nuke_plugin.cachetool``) over cache folders the node made.

The folders are made by the node's own Compute in the fake Nuke (records, frames, lock files as
the node writes them) and the scripts by the fake Nuke's ``scriptSave``.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import make_graph

from nuke_plugin import cache, cachetool, compute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _age(folder, days):
    """Make everything in ``folder`` look written ``days`` days ago."""
    when = time.time() - days * 86400
    for name in os.listdir(folder):
        os.utime(os.path.join(folder, name), (when, when))


def _lbsmatte(*args):
    """``lbsmatte cache ...`` in a process of its own: (exit code, stdout)."""
    done = subprocess.run([sys.executable, "-m", "core.cli", "cache"] + list(args), cwd=REPO,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    return done.returncode, done.stdout


@pytest.fixture
def show(fake_nuke, lbs_env, sequences):
    """A shot's scripts over its life: v001 computed with one setting, v002 with another (the key
    of v001 is then named only by v001), each saved in ``scripts/``."""
    scripts = lbs_env["tmp"] / "scripts"
    scripts.mkdir()
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node).job
    fake_nuke.scriptSave(str(scripts / "sh010_v001.nk"))
    node["premultiply"].setValue(False)
    second = compute.compute(node).job
    fake_nuke.scriptSave(str(scripts / "sh010_v002.nk"))
    assert first.key != second.key
    for job in (first, second):
        _age(job.folder, 40)
    return {"node": node, "old": first, "new": second, "scripts": scripts, "cache": lbs_env["cache"]}


def test_list_says_size_frames_script_and_who_names_each_result(show):
    code, out = _lbsmatte("list", show["cache"], "--scripts", str(show["scripts"]), "--json")
    assert code == 0, out
    listing = json.loads(out)
    rows = dict((row["key"], row) for row in listing["results"])
    assert sorted(rows) == sorted([show["old"].key, show["new"].key])  # not .bake, not .locks
    old, new = rows[show["old"].key], rows[show["new"].key]
    assert old["frames"] == new["frames"] == 3 and old["size"] > 0 and listing["size"] >= old["size"] + new["size"]
    assert [os.path.basename(s) for s in old["scripts"]] == ["sh010_v001.nk"]
    assert [os.path.basename(s) for s in new["scripts"]] == ["sh010_v002.nk"]
    assert new["node"] == "LBSMatte1" and not new["in_use"]
    code, out = _lbsmatte("list", show["cache"])
    assert code == 0 and "2 result folder(s)" in out and show["old"].key in out


def test_prune_unreferenced_removes_only_what_no_script_names(show):
    os.remove(str(show["scripts"] / "sh010_v001.nk"))  # the old version is gone
    code, out = _lbsmatte("prune", show["cache"], "--unreferenced", "--scripts", str(show["scripts"]), "--dry-run")
    assert code == 0 and f"WOULD REMOVE\t{show['old'].folder}" in out and show["new"].key not in out
    assert os.path.isdir(show["old"].folder), "--dry-run removed something"
    code, out = _lbsmatte("prune", show["cache"], "--unreferenced", "--scripts", str(show["scripts"]))
    assert code == 0 and f"REMOVED\t{show['old'].folder}" in out and "removed 1 of 2" in out
    assert not os.path.exists(show["old"].folder)
    assert sorted(cache.missing_frames(show["new"].folder, [1001, 1002, 1003])) == []
    assert not [n for n in os.listdir(show["cache"]) if n.startswith(".removing")]
    assert not os.path.exists(os.path.join(show["cache"], cache.LOCKS_FOLDER, show["old"].key))


def test_prune_older_than_keeps_what_was_used_since(show):
    _age(show["new"].folder, 10)
    code, out = _lbsmatte("prune", show["cache"], "--older-than", "30")
    assert code == 0 and f"REMOVED\t{show['old'].folder}" in out
    assert os.path.isdir(show["new"].folder)
    # a Compute that finds every frame cached still marks its key used (it rewrites the record)
    compute.compute(show["node"])
    _age(show["new"].folder, 0)
    code, out = _lbsmatte("prune", show["cache"], "--older-than", "0")
    assert code == 0 and f"KEPT\t{show['new'].folder}\twritten less than 24 hours ago" in out
    assert os.path.isdir(show["new"].folder)


def test_prune_never_removes_a_key_a_compute_is_using(show, fake_nuke, monkeypatch):
    # The node computes the old settings again: its job holds the key from before it looks into
    # the folder until it ends, and a prune in another process leaves the folder alone meanwhile.
    node = show["node"]
    node["premultiply"].setValue(True)
    job = compute.prepare(node)
    assert job.key == show["old"].key
    _age(show["old"].folder, 40)  # as if the record were old: only the lock protects it now
    code, out = _lbsmatte("prune", show["cache"], "--older-than", "1")
    assert f"KEPT\t{show['old'].folder}\tin use by a Compute or farm job" in out and code == 0
    assert os.path.isdir(show["old"].folder)
    compute.finish(node, job, compute.run(job))
    _age(show["old"].folder, 40)
    code, out = _lbsmatte("prune", show["cache"], "--older-than", "1")
    assert f"REMOVED\t{show['old'].folder}" in out
    # the next Compute of that key finds no folder and computes it again
    assert compute.compute(node).computed == [1001, 1002, 1003]


def test_prune_touches_nothing_but_key_folders_lbsmatte_made(show, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.exr").write_bytes(b"x")
    cache_dir = show["cache"]
    os.symlink(str(outside), os.path.join(cache_dir, "0123456789abcdef"))  # a key's name, a link out
    stray = os.path.join(cache_dir, "fedcba9876543210")  # a key's name, no record of it
    os.makedirs(stray)
    open(os.path.join(stray, "notes.txt"), "w").close()
    other = os.path.join(cache_dir, "renders")
    os.makedirs(other)
    for folder in (stray, other):
        _age(folder, 400)
    code, out = _lbsmatte("prune", cache_dir, "--older-than", "1")
    assert code == 0, out
    assert (outside / "precious.exr").exists() and os.path.isfile(os.path.join(stray, "notes.txt"))
    assert os.path.isdir(other) and os.path.isdir(os.path.join(cache_dir, cache.BAKE_FOLDER))
    assert f"KEPT\t{stray}\tnot a result folder LBSMatte made" in out
    assert not os.path.exists(show["old"].folder) and not os.path.exists(show["new"].folder)


@pytest.mark.parametrize("args, says", [
    (["prune", "{cache}"], "prune needs --unreferenced, --older-than DAYS or both"),
    (["prune", "{cache}", "--unreferenced"], "--unreferenced needs --scripts"),
    (["list", "{cache}/nope"], "does not exist or is not a folder"),
    (["prune", "{cache}", "--older-than", "-1"], "--older-than takes a number of days"),
])
def test_usage_errors_remove_nothing(show, args, says):
    code, out = _lbsmatte(*[a.format(cache=show["cache"]) for a in args])
    assert code == 2 and out.startswith("ERROR: ") and says in out
    assert os.path.isdir(show["old"].folder) and os.path.isdir(show["new"].folder)


def test_the_nodes_status_says_how_much_disk_its_result_takes(show):
    status = show["node"]["status"].value()
    size = cache.folder_usage(show["new"].folder)[0]
    assert status.endswith(f", {cache.size_text(size)} on disk)"), status


def test_size_text():
    assert [cache.size_text(n) for n in (0, 999, 1000, 1536000, 12_300_000_000, 999_999_999_999)] == [
        "0 bytes", "999 bytes", "1 KB", "1.5 MB", "12.3 GB", "1000 GB"]
    # Just under 100 of a unit rounds to three digits: no "100.0 MB"
    assert [cache.size_text(n) for n in (99_940_000, 99_999_999, 99_999_999_999)] == ["99.9 MB", "100 MB", "100 GB"]
    assert [cache.size_text(n) for n in (999_499, 999_999, 999_600_000)] == ["999 KB", "1.0 MB", "1.0 GB"]


def test_cachetool_runs_under_nukes_python_without_core(show):
    # python -m nuke_plugin.cachetool: the standard library and nuke_plugin alone
    done = subprocess.run([sys.executable, "-S", "-m", "nuke_plugin.cachetool", "list", show["cache"]], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "2 result folder(s)" in done.stdout, done.stdout + done.stderr
    assert cachetool.EXIT_USAGE == 2


def test_help_reads_as_plain_text(capsys):
    # python -m nuke_plugin.cachetool --help printed the docstring's reST: ``lbsmatte cache list | prune``.
    with pytest.raises(SystemExit) as done:
        cachetool.main(["--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "lbsmatte cache list | prune: what a Nuke node's cache folder holds" in text
    assert "``" not in text and "python -m nuke_plugin.cachetool" in text


def test_with_json_stdout_holds_the_document_alone(tmp_path, capsys):
    # A script's json.loads(stdout) of 'cache list --json' met an ERROR: line there instead (a cache
    # folder not mounted on that machine), as 'weights show --json' and 'fingerprint' did.
    from core import cli

    missing = str(tmp_path / "not_mounted")
    assert cli.main(["cache", "list", missing, "--json"]) == 2
    said = capsys.readouterr()
    assert said.out == "" and said.err.startswith(f"ERROR: the cache folder {missing} does not exist")
    assert cli.main(["cache", "prune", str(tmp_path), "--json"]) == 2
    said = capsys.readouterr()
    assert said.out == "" and said.err.startswith("ERROR: prune needs --unreferenced")
    assert cli.main(["cache", "list", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"cache": str(tmp_path), "results": [], "size": 0}
    assert cli.main(["cache", "list", missing]) == 2  # without --json: the one stream, as before
    assert capsys.readouterr().out.startswith("ERROR: the cache folder")


def test_dry_run_writes_nothing(show):
    # A dry run made <cache>/.locks and a lock file per key folder it looked at (to see whether a
    # job held it): it must leave the cache folder as it found it.
    import shutil

    locks = os.path.join(show["cache"], cache.LOCKS_FOLDER)
    shutil.rmtree(locks)  # as a cache copied from elsewhere, or one whose locks were cleaned up
    before = sorted(os.path.join(folder, name) for folder, _, names in os.walk(show["cache"]) for name in names)
    code, out = _lbsmatte("prune", show["cache"], "--older-than", "1", "--dry-run")
    assert code == 0 and f"WOULD REMOVE\t{show['old'].folder}" in out and "would remove 2 of 2" in out, out
    assert not os.path.exists(locks), "--dry-run made the lock folder"
    after = sorted(os.path.join(folder, name) for folder, _, names in os.walk(show["cache"]) for name in names)
    assert after == before


def _key_folder(cache_dir, key, frames=(1001,), days=40, script="", node="", record=True, size=100):
    """A key folder as a Compute leaves it (record, result frames), written ``days`` days ago."""
    folder = os.path.join(str(cache_dir), key)
    os.makedirs(folder)
    if record:
        with open(os.path.join(folder, cache.RECORD_NAME), "w") as handle:
            json.dump({"key": key, "script": script, "node": node}, handle)
    for frame in frames:
        with open(os.path.join(folder, f"lbsmatte.{frame:04d}.exr"), "wb") as handle:
            handle.write(b"x" * size)
    _age(folder, days)
    return folder


def _run_tool(capsys, *args):
    code = cachetool.main(list(args))
    return code, capsys.readouterr().out


def test_list_finds_autosaves_the_records_own_script_and_says_what_is_not_lbsmattes(tmp_path, capsys):
    # Built by hand, in this process: what each column of 'list' says, beyond what the node's own
    # Compute makes (no autosave, no folder of a key's name without LBSMatte's record).
    cache_dir, scripts = tmp_path / "cache", tmp_path / "scripts"
    scripts.mkdir()
    elsewhere = tmp_path / "elsewhere.nk"  # the script of the last Compute, outside --scripts
    a, b, c, d = "a" * 16, "b" * 16, "c" * 16, "d" * 16
    (scripts / "sh010_v003.nk.autosave").write_text(f'LBSMatte {{\n result_key "{a}"\n}}\n')
    (scripts / "sh010_v002.nk~").write_text(f'LBSMatte {{\n result_key {b}\n}}\n')
    elsewhere.write_text(f'LBSMatte {{\n result_key "{c}"\n}}\n')
    folder = _key_folder(cache_dir, a)
    with open(os.path.join(folder, "lbsmatte_trimap.1001.exr"), "wb") as handle:  # a trimap, not a result frame
        handle.write(b"t" * 50)
    os.makedirs(os.path.join(folder, "sub"))  # not a file: no bytes of its own counted
    _age(folder, 40)
    _key_folder(cache_dir, b)
    _key_folder(cache_dir, c, script=str(elsewhere), node="LBSMatte2")
    _key_folder(cache_dir, d, record=False)
    code, out = _run_tool(capsys, "list", str(cache_dir), "--scripts", str(scripts), "--json")
    assert code == 0
    rows = {row["key"]: row for row in json.loads(out)["results"]}
    assert [os.path.basename(s) for s in rows[a]["scripts"]] == ["sh010_v003.nk.autosave"]
    assert [os.path.basename(s) for s in rows[b]["scripts"]] == ["sh010_v002.nk~"]
    assert rows[c]["scripts"] == [str(elsewhere)] and rows[d]["scripts"] == []
    assert [rows[k]["lbsmatte"] for k in (a, b, c, d)] == [True, True, True, False]
    record = len(json.dumps({"key": a, "script": "", "node": ""}))
    assert (rows[a]["frames"], rows[a]["size"]) == (1, 100 + 50 + record)
    assert rows[a]["written"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(folder + "/sub")))
    code, out = _run_tool(capsys, "list", str(cache_dir))  # without --scripts: who names it is not known
    lines = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert lines[c][4:] == [f"{elsewhere} LBSMatte2", "-"]
    assert lines[d][4:] == ["? ?", "-", "not LBSMatte's"]
    code, out = _run_tool(capsys, "list", str(cache_dir), "--json")
    assert {row["scripts"] for row in json.loads(out)["results"]} == {None}
    assert _run_tool(capsys, "list", str(cache_dir), "--scripts", str(tmp_path / "gone")) == (
        2, f"ERROR: --scripts {tmp_path / 'gone'}: no such file or folder\n")


def test_prune_counts_what_it_removed_and_frees_only_what_no_other_folder_links(tmp_path, capsys):
    cache_dir = tmp_path / "cache"
    old, recent, stray = "a" * 16, "b" * 16, "d" * 16
    _key_folder(cache_dir, old, frames=(1, 2), size=1000)
    _key_folder(cache_dir, recent, days=3, size=1000)
    _key_folder(cache_dir, stray, record=False, size=1000)
    # a frame the recent key reused from the old one is a hard link: removing the old folder leaves it
    os.link(os.path.join(cache_dir, recent, "lbsmatte.1001.exr"), os.path.join(cache_dir, old, "lbsmatte.0003.exr"))
    _age(os.path.join(cache_dir, old), 40)
    leftover = os.path.join(cache_dir, f".removing-{'e' * 16}-0123456789")  # an interrupted prune's
    os.makedirs(leftover)
    record = len(json.dumps({"key": old, "script": "", "node": ""}))
    code, out = _run_tool(capsys, "list", str(cache_dir), "--json")
    listing = json.loads(out)
    rows = {row["key"]: row for row in listing["results"]}
    assert (rows[old]["size"], rows[old]["own_size"]) == (3000 + record, 2000 + record)
    assert listing["size"] == 5000 + 2 * record  # every file each folder holds, linked ones too
    code, out = _run_tool(capsys, "prune", str(cache_dir), "--older-than", "7", "--dry-run")
    assert code == 0 and os.path.isdir(leftover), "--dry-run removed something"
    assert recent not in out  # newer than --older-than: not chosen, not a KEPT line
    assert out.splitlines()[-1] == f"would remove 1 of 3 result folder(s), {cache.size_text(2000 + record)}"
    code, out = _run_tool(capsys, "prune", str(cache_dir), "--older-than", "7", "--json")
    done = json.loads(out)
    chosen = {os.path.basename(row["folder"]): row for row in done["chosen"]}
    assert sorted(chosen) == [old, stray] and (chosen[old]["removed"], chosen[stray]["removed"]) == (True, False)
    assert done["freed"] == 2000 + record
    assert not os.path.exists(leftover) and not os.path.exists(os.path.join(cache_dir, old))
    assert os.path.isfile(os.path.join(cache_dir, recent, "lbsmatte.1001.exr"))
