"""The run record: ``run.json`` in the output folder, what makes a resumed run the same run.

It holds the run id (every row's key derives from it), a fingerprint of the settings that decide
what each row asks for, and a fingerprint of the input. A run resumed into the same output reuses
the run id, so its keys match the first attempt's; a run whose settings or input differ from the
record is refused (``ConfigurationError``) instead of mixing two runs in one output.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

import attrs

from radient_async import ConfigurationError
from radient_async.ray._storage import Target

__all__ = ["RECORD_NAME", "RunRecord", "fingerprint", "mark_finished", "open_run"]

RECORD_NAME = "run.json"
_VERSION = 1


def fingerprint(value: Any) -> str:
    """A stable digest of a JSON-like value (keys sorted; non-JSON values by their ``repr``)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@attrs.frozen(kw_only=True)
class RunRecord:
    """One run of ``generate`` into one output folder."""

    run_id: str
    input: str
    input_fingerprint: str
    settings_fingerprint: str
    settings: Mapping[str, Any]
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "run_id": self.run_id,
            "input": self.input,
            "input_fingerprint": self.input_fingerprint,
            "settings_fingerprint": self.settings_fingerprint,
            "settings": dict(self.settings),
            "finished": self.finished,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> RunRecord:
        try:
            if data["version"] != _VERSION:
                raise ConfigurationError(f"{where}: unknown run record version {data['version']}")
            return cls(
                run_id=str(data["run_id"]),
                input=str(data["input"]),
                input_fingerprint=str(data["input_fingerprint"]),
                settings_fingerprint=str(data["settings_fingerprint"]),
                settings=dict(data["settings"]),
                finished=bool(data["finished"]),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"{where} is not a run record: {exc!r}") from None

    def check_same(self, other: RunRecord, where: str) -> None:
        """Refuse to resume this run with another input or other settings."""
        if other.settings_fingerprint != self.settings_fingerprint:
            changed = sorted(
                name
                for name in {*self.settings, *other.settings}
                if self.settings.get(name) != other.settings.get(name)
            )
            raise ConfigurationError(
                f"{where} belongs to run {self.run_id} with other settings (changed: "
                f"{', '.join(changed) or 'unknown'}); use a new output folder"
            )
        if other.input_fingerprint != self.input_fingerprint:
            raise ConfigurationError(
                f"{where} belongs to run {self.run_id} over another input ({self.input!r} as it "
                "was then); use a new output folder"
            )


def open_run(
    target: Target, *, input: str, input_fingerprint: str, settings: Mapping[str, Any]
) -> RunRecord:
    """The output's run record: the existing one if it matches, else a new run, written."""
    where = target.url_of(RECORD_NAME)
    wanted = RunRecord(
        run_id=f"run_{secrets.token_hex(8)}",
        input=input,
        input_fingerprint=input_fingerprint,
        settings_fingerprint=fingerprint(settings),
        settings=json.loads(json.dumps(settings, default=repr)),
    )
    existing = target.read_json(target.path(RECORD_NAME))
    if existing is not None:
        record = RunRecord.from_json(existing, where)
        record.check_same(wanted, where)
        return record
    target.write_json(target.path(RECORD_NAME), wanted.to_json())
    return wanted


def mark_finished(target: Target, record: RunRecord) -> RunRecord:
    """Record that every input row has its result row."""
    done = attrs.evolve(record, finished=True)
    target.write_json(target.path(RECORD_NAME), done.to_json())
    return done
