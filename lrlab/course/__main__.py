"""``python -m lrlab.course COMMAND``: the course's commands.

    python -m lrlab.course data [--profile P] [--root DIR]   the datasets a profile needs, before a book build
    python -m lrlab.course results [STUDY ...] [options]      the reference runs (python -m lrlab.course.runner)
    python -m lrlab.course verdicts                           book/results/verdicts.csv from the result tables
    python -m lrlab.course sync                               the repository URL and results timing into place
    python -m lrlab.course student [OUT]                      the student edition (no solutions) into OUT
    python -m lrlab.course zh template|check|build ...        the Chinese edition's translations and book
    python -m lrlab.course site [OUT]                         the built editions assembled as the site
"""

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "data":
        from .datasets import main as data_main

        return data_main(rest)
    if command == "results":
        from .runner import main as runner_main

        return runner_main(rest)
    if command == "verdicts" and not rest:
        from .verdicts import write_verdicts

        path = write_verdicts()
        print(f"wrote {path}")
        return 0
    if command == "sync" and not rest:
        from .book import ROOT, sync

        for path in sync():
            print(f"synced {path.relative_to(ROOT)}")
        return 0
    if command == "student" and len(rest) <= 1:
        from .book import student_edition

        written = student_edition(rest[0] if rest else "_build/student")
        print(f"wrote {len(written)} chapters without solutions to {written[0].parent if written else rest}")
        return 0
    if command == "site" and len(rest) <= 1:
        from .book import assemble_site

        written = assemble_site(rest[0] if rest else "_build/site")
        print(f"assembled {', '.join(str(p) for p in written)}")
        return 0
    if command == "zh":
        from .translation import main as zh_main

        return zh_main(rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
