"""Session automation: the gateway's system-wide flag and each key's setting (rule C3).

Chat completions and embeddings open a session only when both allow it; the key's `duration` is how
long such a session lasts. A key without a setting has the gateway's default row (enabled, 3600 s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mockserver.domain.errors import InvalidFault
from mockserver.domain.shared import LocalSlots, Slots

MIN_DURATION, MAX_DURATION = 60, 86400  # what PUT /api/v1/automation/settings accepts


@dataclass(frozen=True)
class Automation:
    """One key's automation setting."""

    enabled: bool = True
    duration: int = 3600


class AutomationSettings:
    """The system flag (from the mock's Config) and the per-key settings (shared like keys and faults)."""

    def __init__(self, system: bool, slots: Slots[Automation] | None = None) -> None:
        self.system = system
        self._slots: Slots[Automation] = LocalSlots() if slots is None else slots

    def setting(self, key: str) -> Automation:
        return self._slots.get(key) or Automation()

    def effective(self, key: str) -> Automation:
        """The key's setting as the gateway applies it: enabled only when the system flag is on too."""
        setting = self.setting(key)
        return replace(setting, enabled=self.system and setting.enabled)

    async def change(self, key: str, *, enabled: bool | None = None, duration: int | None = None) -> Automation:
        """Change the fields given; the others keep their value.

        Raises:
            InvalidFault: a duration outside 60-86400 (the gateway's settings endpoint refuses it).
        """
        if duration is not None and not MIN_DURATION <= duration <= MAX_DURATION:
            raise InvalidFault(f"duration must be {MIN_DURATION}-{MAX_DURATION} seconds, got {duration}")

        def update(current: Automation | None) -> tuple[Automation, Automation]:
            new = current or Automation()
            new = replace(new, enabled=new.enabled if enabled is None else enabled)
            new = replace(new, duration=new.duration if duration is None else duration)
            return new, new

        return await self._slots.update(key, update)
