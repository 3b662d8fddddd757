"""The fault campaign: real services from the devstack stopped, killed or starved while
the platform works, and what was lost or duplicated counted. Each test writes its
figures to ``out/faults/<name>.json``; docs/reliability.md holds the table of the last
run. The ``devstack`` and ``record_figures`` fixtures live in tests/conftest.py (the
alert stream's outage test uses them from tests/alerts)."""
