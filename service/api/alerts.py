"""Routes of the alerts: current and past alerts of a site, acknowledgement, evaluation
on demand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from domain.alerts import AlertStatus
from service.access.auth import PrincipalDep
from service.alerts.engine import AlertEngine
from service.api.deps import SiteDep
from service.api.limits import AuthorizedRoute

router = APIRouter(
    prefix="/api/v1/sites/{site}/alerts", tags=["alerts"], route_class=AuthorizedRoute
)


def _engine(request: Request) -> AlertEngine:
    engine: AlertEngine | None = request.app.state.alerts
    if engine is None:
        raise HTTPException(503, "alerts are disabled (MICROVILLE_ALERTS_PATH is empty)")
    return engine


EngineDep = Annotated[AlertEngine, Depends(_engine)]


class AlertOut(BaseModel):
    alert_id: str = Field(description="stable identity, e.g. microville112:balance:rolling_7d")
    rule: str
    state: str = Field(description="firing or resolved")
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    last_notified: datetime | None
    acknowledged: bool
    figures: dict[str, float | str | None]

    @classmethod
    def of(cls, s: AlertStatus) -> AlertOut:
        return cls(
            alert_id=s.alert_id, rule=s.rule, state=s.state.value, first_seen=s.first_seen,
            last_seen=s.last_seen, resolved_at=s.resolved_at, last_notified=s.last_notified,
            acknowledged=s.acknowledged, figures=s.figures,
        )  # fmt: skip


class EventOut(BaseModel):
    alert_id: str
    event: str = Field(
        description="firing, resolved or reminder (notified); acknowledged (recorded only)"
    )
    time: datetime
    figures: dict[str, float | str | None]
    by: str | None = Field(
        default=None, description="who acknowledged (the API token's name); None otherwise"
    )


class AlertsOut(BaseModel):
    site: str
    firing: list[AlertOut]
    resolved: list[AlertOut]
    history: list[EventOut]


@router.get("", response_model=AlertsOut)
def list_alerts(
    site: SiteDep, engine: EngineDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
) -> AlertsOut:
    """Alerts firing now, resolved ones, and the latest events (newest first)."""
    alerts = [AlertOut.of(a) for a in engine.alerts(site.id)]
    return AlertsOut(
        site=site.id,
        firing=[a for a in alerts if a.state == "firing"],
        resolved=[a for a in alerts if a.state == "resolved"],
        history=[EventOut.model_validate(e) for e in engine.history(site.id, limit)],
    )


@router.post("/evaluate", response_model=list[EventOut])
def evaluate(site: SiteDep, engine: EngineDep) -> list[EventOut]:
    """Evaluate every site's rules now; returns this site's new events."""
    return [
        EventOut(alert_id=n.alert_id, event=n.event, time=n.time, figures=n.figures)
        for n in engine.evaluate()
        if n.site == site.id
    ]


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge(
    site: SiteDep, engine: EngineDep, principal: PrincipalDep, alert_id: str
) -> AlertOut:
    """Acknowledge an alert: no more reminders for this episode; the history records
    who (the token's name) and when."""
    status = engine.acknowledge(site.id, alert_id, by=principal.name)
    if status is None:
        raise HTTPException(404, f"no alert {alert_id!r} for site {site.id!r}")
    return AlertOut.of(status)
