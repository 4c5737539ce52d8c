"""`manage.py bench NAME [options]`: benchmarks that print numbers (`bench NAME --help`).

Each builds its data in a throwaway database (test_<name>, or a SQLite file) or, for `delivery`,
in one transaction that it rolls back; `calendar` needs none. The app's own data is never
touched."""

import importlib

from django.core.management.base import BaseCommand, CommandError

BENCHES = {
    "calendar": "leadops.bench.calendar_bench",
    "sweep": "leadops.bench.sweep_bench",
    "reassign": "leadops.bench.reassign_bench",
    "delivery": "leadops.bench.delivery_bench",
    "home": "leadops.bench.home_bench",
    "api": "leadops.bench.api_bench",
    "admin": "leadops.bench.admin_bench",
    "report": "leadops.bench.report_bench",
    "status": "leadops.bench.status_bench",
}


class Command(BaseCommand):
    help = "Run a benchmark: " + ", ".join(BENCHES) + " (options: manage.py bench NAME --help)."

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(BENCHES))
        parser.add_argument("rest", nargs="*", help="options of the benchmark")

    def run_from_argv(self, argv):
        # Pass everything after the benchmark's name through untouched.
        if len(argv) > 2 and argv[2] in BENCHES:
            self._rest = argv[3:]
            argv = argv[:3]
        return super().run_from_argv(argv)

    def handle(self, *args, name, rest, **options):
        try:
            module = importlib.import_module(BENCHES[name])
        except ImportError as exc:
            raise CommandError(f"benchmark {name!r} is not available: {exc}") from None
        code = module.main(getattr(self, "_rest", rest))
        if code:
            raise CommandError(f"benchmark {name!r} failed (exit {code})")
