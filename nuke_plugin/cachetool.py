"""``lbsmatte cache list | prune``: what a Nuke node's cache folder holds, and removing what no
script uses any more (also ``python -m nuke_plugin.cachetool``, with Nuke's Python or any other:
standard library only).

Every *Compute* writes its results into ``<cache>/<key>/`` (:mod:`nuke_plugin.cache`) and nothing
removes a key folder but *Clear cache* on the node showing it: the results of earlier settings,
deleted nodes, older script versions and copied scripts stay. ``list`` says, per key folder, its
size, its frames, when it was last written (its last *Compute*), the script and node of that
*Compute*, and — given the scripts' folders (``--scripts``) — how many scripts still name it.
``prune`` removes key folders that no script found names (``--unreferenced``) and/or that were
not written for ``--older-than DAYS``; ``--dry-run`` says what it would remove. It never removes
a folder a Compute or farm job is using (:func:`nuke_plugin.cache.remove_result`), one written in
the last 24 hours, or anything but the key folders LBSMatte made directly in the cache folder.

Lines on stdout, tab-separated, one per key folder; ``ERROR:`` lines and exit 2 for a usage error,
1 when a folder chosen could not be removed.
"""

import argparse
import json
import os
import sys
import time

from nuke_plugin import cache

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Nuke scripts and their autosaves.
SCRIPT_SUFFIXES = (".nk", ".nk.autosave", ".nk~")


def find_scripts(paths):
    """The Nuke scripts among ``paths`` (files as given; folders searched through, links not followed)."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(os.path.abspath(path))
            continue
        for folder, names, files in os.walk(path):
            names.sort()
            found.extend(os.path.join(folder, name) for name in sorted(files) if name.endswith(SCRIPT_SUFFIXES))
    return found


def references(entries, scripts):
    """``{key: [scripts naming it]}`` over ``scripts`` and the script each entry's record names."""
    every = list(scripts)
    known = set(os.path.normcase(os.path.abspath(s)) for s in every)
    for entry in entries:
        own = os.path.normcase(os.path.abspath(entry.script)) if entry.script else ""
        if own and own not in known and os.path.isfile(entry.script):
            every.append(entry.script)
            known.add(own)
    named = {}
    for script in every:
        for key in cache.script_keys(script):
            named.setdefault(key, []).append(script)
    return named


def _when(seconds):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "-"


def _describe(entry, named, scanned):
    return {
        "key": entry.key,
        "folder": entry.folder,
        "size": entry.size,
        "own_size": entry.own,
        "frames": entry.frames,
        "written": _when(entry.written),
        "script": entry.script,
        "node": entry.node,
        "scripts": named.get(entry.key, []) if scanned else None,
        "in_use": cache.in_use(os.path.dirname(entry.folder), entry.key),
        "lbsmatte": entry.ours,
    }


def _line(row):
    refs = "-" if row["scripts"] is None else "%d script(s)" % len(row["scripts"])
    return "\t".join([
        row["key"], cache.size_text(row["size"]), "%d frame(s)" % row["frames"], row["written"],
        "%s %s" % (row["script"] or "?", row["node"] or "?"), refs,
        "in use" if row["in_use"] else ("" if row["lbsmatte"] else "not LBSMatte's"),
    ]).rstrip("\t")


def add_arguments(parser, command="cache"):
    sub = parser.add_subparsers(dest="cache_command", metavar="list | prune")
    sub.required = True
    for name, text in (("list", "each key folder: size, frames, last written, the script and node of its last "
                                "Compute, the scripts that name it (with --scripts), in use"),
                       ("prune", "remove key folders no script names (--unreferenced) and/or not written for "
                                 "--older-than DAYS; never one in use or written in the last 24 hours")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("cache_dir", metavar="CACHE", help="the cache folder (the node's cache folder knob, "
                                                          "$LBSMATTE_CACHE or lbsmatte_cache next to the scripts)")
        p.add_argument("--scripts", action="append", default=[], metavar="PATH",
                       help="a Nuke script, or a folder searched for *.nk (repeat for more): the scripts whose "
                            "LBSMatte nodes may use this cache")
        p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
        if name == "prune":
            p.add_argument("--unreferenced", action="store_true",
                           help="remove folders that none of the --scripts (nor the script of their last "
                                "Compute) names")
            p.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                           help="remove folders not written for DAYS days (with --unreferenced: both must hold)")
            p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")


def run(args):
    # With --json, stdout holds the JSON document alone (a script's json.loads): ERROR lines on stderr.
    notes = sys.stderr if getattr(args, "json", False) else sys.stdout
    cache_dir = os.path.abspath(os.path.expanduser(args.cache_dir))
    if not os.path.isdir(cache_dir):
        print("ERROR: the cache folder %s does not exist or is not a folder" % cache_dir, file=notes, flush=True)
        return EXIT_USAGE
    prune = args.cache_command == "prune"
    if prune and not args.unreferenced and args.older_than is None:
        print("ERROR: prune needs --unreferenced, --older-than DAYS or both (what to remove)", file=notes, flush=True)
        return EXIT_USAGE
    if prune and args.unreferenced and not args.scripts:
        print("ERROR: --unreferenced needs --scripts: the scripts (or their folders) that may use %s" % cache_dir,
              file=notes, flush=True)
        return EXIT_USAGE
    if prune and args.older_than is not None and not args.older_than >= 0:
        print("ERROR: --older-than takes a number of days, 0 or more, not %r" % args.older_than, file=notes, flush=True)
        return EXIT_USAGE
    for path in args.scripts:
        if not os.path.exists(path):
            print("ERROR: --scripts %s: no such file or folder" % path, file=notes, flush=True)
            return EXIT_USAGE
    entries = cache.scan(cache_dir)
    scanned = bool(args.scripts)
    named = references(entries, find_scripts(args.scripts)) if scanned or prune else {}
    rows = [_describe(entry, named, scanned) for entry in entries]
    if not prune:
        total = sum(row["size"] for row in rows)
        if args.json:
            print(json.dumps({"cache": cache_dir, "results": rows, "size": total}, indent=2), flush=True)
        else:
            for row in rows:
                print(_line(row), flush=True)
            print("%d result folder(s), %s in %s" % (len(rows), cache.size_text(total), cache_dir), flush=True)
        return EXIT_OK
    cutoff = None if args.older_than is None else time.time() - args.older_than * 86400.0
    failed = False
    chosen = []
    for index, entry in enumerate(entries):
        row = rows[index]
        if args.unreferenced and named.get(entry.key):
            continue
        if cutoff is not None and entry.written > cutoff:
            continue
        why = cache.remove_result(cache_dir, entry.key, older_than=cutoff, dry_run=args.dry_run)
        row["removed"] = not why
        row["kept_because"] = why or None
        chosen.append(row)
        failed = failed or why.startswith("cannot ")  # the others are kept on purpose
        if args.json:
            continue
        if why:
            print("KEPT\t%s\t%s" % (entry.folder, why), flush=True)
        else:
            print("%s\t%s\t%s" % ("WOULD REMOVE" if args.dry_run else "REMOVED", entry.folder,
                                  cache.size_text(entry.own)), flush=True)
    if not args.dry_run:
        cache.remove_leftovers(cache_dir)
    freed = sum(row["own_size"] for row in chosen if row["removed"])
    summary = "%s %d of %d result folder(s), %s" % ("would remove" if args.dry_run else "removed",
                                                    sum(1 for row in chosen if row["removed"]), len(rows),
                                                    cache.size_text(freed))
    if args.json:
        print(json.dumps({"cache": cache_dir, "dry_run": args.dry_run, "chosen": chosen, "freed": freed}, indent=2),
              flush=True)
    else:
        print(summary, flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv=None):
    # The docstring's first paragraph, less its reST markup: --help showed ``lbsmatte cache list | prune``.
    parser = argparse.ArgumentParser(prog="python -m nuke_plugin.cachetool",
                                     description=__doc__.split("\n\n")[0].replace("``", ""))
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
