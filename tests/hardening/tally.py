"""Counts of what the hardening suite actually did, printed at the end of the pytest run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Tally:
    attacks_tried: int = 0
    attacks_screened: int = 0
    attacks_reached_model: int = 0
    attacks_succeeded: int = 0
    fuzz_cases: int = 0
    faults_injected: int = 0
    faults_survived: int = 0
    records_expected: int = 0
    records_lost: int = 0

    @contextlib.contextmanager
    def fault(self) -> Iterator[None]:
        """One injected fault; it counts as survived only if the block's assertions all pass."""
        self.faults_injected += 1
        yield
        self.faults_survived += 1

    def attack(self, screened: bool, reached_model: bool, succeeded: bool) -> None:
        self.attacks_tried += 1
        self.attacks_screened += screened
        self.attacks_reached_model += reached_model
        self.attacks_succeeded += succeeded

    def records(self, expected: int, stored: int) -> None:
        self.records_expected += expected
        self.records_lost += max(0, expected - stored)

    def line(self) -> str:
        return (
            f"hardening: attacks tried {self.attacks_tried} (screened by the input check "
            f"{self.attacks_screened}, reached a model {self.attacks_reached_model}) / "
            f"succeeded {self.attacks_succeeded}; "
            f"fuzz cases run {self.fuzz_cases}; "
            f"faults injected {self.faults_injected} / survived {self.faults_survived}; "
            f"records expected {self.records_expected} / lost {self.records_lost}"
        )

    def ran(self) -> bool:
        return any(vars(self).values())


TALLY = Tally()
