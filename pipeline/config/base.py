"""The base of every config section: unknown keys are errors, values are frozen, and no float is
infinite or NaN (`.inf` passes every `gt=` bound, so a bound alone does not keep a value finite)."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Settings(Protocol):
    """The whole `Config` or a stage's slice of it (pipeline/config/stages.py), as typed by what
    a function reads of it; every one dumps to the plain dict it was validated from."""

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]: ...
    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...
