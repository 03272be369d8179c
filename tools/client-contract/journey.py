"""A client developer's first journey, through code generated from the served OpenAPI
document only (openapi-python-client; deploy/local/client-contract.sh generates it and
runs this). Every call goes through a generated function; every answer must parse into
the model the document promises. It fails when the document and the server disagree,
or when the document makes the generated code unusable (a body that cannot be left out,
an answer the generator dropped, a token the typing demands where none is needed).

Usage: journey.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD   (the generated package
`precinct_client` on PYTHONPATH).
"""

import sys
import uuid

from precinct_client import AuthenticatedClient, Client
from precinct_client.api.accounts import login, register_account
from precinct_client.api.crimes import (
    accept,
    approve_closure,
    get_crime,
    resolve,
    respond,
    submit_crime,
)
from precinct_client.api.dispatch import dispatch
from precinct_client.api.patrols import register_patrol
from precinct_client.api.stations import create_station
from precinct_client import models
from precinct_client.types import Response

BASE, ADMIN_EMAIL, ADMIN_PASSWORD = sys.argv[1:4]
RUN = uuid.uuid4().hex[:8]
PASSWORD = "correct horse battery staple 42"
LAT, LON = 7.07, 125.61
calls = 0


def expect(res: Response, status: int, model, what: str):
    """The answer has `status` and parsed into `model` (the document's promise)."""
    global calls
    calls += 1
    body = res.content.decode("utf-8", "replace")[:400]
    if res.status_code != status:
        sys.exit(f"{what}: status {res.status_code}, expected {status}: {body}")
    if model is None:
        return res.parsed
    if not isinstance(res.parsed, model):
        sys.exit(
            f"{what}: the generated code parsed {type(res.parsed).__name__}, "
            f"expected {model.__name__}: {body}"
        )
    return res.parsed


def session(email: str, password: str) -> tuple[AuthenticatedClient, str]:
    anon = Client(base_url=BASE, raise_on_unexpected_status=True)
    res = login.sync_detailed(
        client=anon, body=models.LoginBody(email=email, password=password)
    )
    token = expect(res, 200, models.LoginResponse, f"login {email}")
    client = AuthenticatedClient(
        base_url=BASE, token=token.access_token, raise_on_unexpected_status=True
    )
    return client, str(token.user.id)


def staff(admin: AuthenticatedClient, role: str, station: str) -> tuple[AuthenticatedClient, str]:
    email = f"{role.lower()}-{RUN}@contract.test"
    body = models.RegisterAccountBody.from_dict(
        {"email": email, "password": PASSWORD, "name": f"{role.title()} {RUN}",
         "role": role, "station_id": station}
    )
    expect(register_account.sync_detailed(client=admin, body=body), 201,
           models.AccountView, f"register {role}")
    return session(email, PASSWORD)


def status_of(report) -> str:
    status = report.status
    return getattr(status, "value", status)


def main() -> None:
    admin, _ = session(ADMIN_EMAIL, ADMIN_PASSWORD)
    station = expect(
        create_station.sync_detailed(
            client=admin,
            body=models.StationBody.from_dict(
                {"name": f"PS {RUN}", "kind": "PRECINCT", "latitude": LAT, "longitude": LON}
            ),
        ),
        201, models.StationView, "create station",
    )
    sid = str(station.id)
    dispatcher, _ = staff(admin, "DISPATCHER", sid)
    supervisor, _ = staff(admin, "SUPERVISOR", sid)
    officer, officer_id = staff(admin, "PATROL", sid)
    patrol = expect(
        register_patrol.sync_detailed(
            client=dispatcher,
            body=models.RegisterPatrolBody.from_dict(
                {"call_sign": f"ALPHA-{RUN}", "station_id": sid, "officer_ids": [officer_id]}
            ),
        ),
        201, models.WrittenPatrol, "register patrol",
    )

    # A citizen registers without a token (the generated function takes a plain Client).
    anon = Client(base_url=BASE, raise_on_unexpected_status=True)
    email = f"citizen-{RUN}@contract.test"
    expect(
        register_account.sync_detailed(
            client=anon,
            body=models.RegisterAccountBody(email=email, password=PASSWORD, name="Citizen"),
        ),
        201, models.AccountView, "register citizen (no token)",
    )
    citizen, _ = session(email, PASSWORD)
    report_body = {
        "title": "Bike stolen",
        "description": "My blue bike was taken from the rack",
        "crime_types": ["Theft"],
        "location": {"latitude": LAT, "longitude": LON, "street": "1 Main St", "city": "Davao"},
    }
    submitted = expect(
        submit_crime.sync_detailed(client=citizen, body=models.SubmitBody.from_dict(report_body)),
        201, models.Submitted, "submit report",
    )
    rid = submitted.id
    seen = expect(get_crime.sync_detailed(rid, client=citizen), 200,
                  models.ReporterReportView, "reporter reads the report")
    assert status_of(seen) == "NEW", status_of(seen)

    # An anonymous report, followed with its tracking token.
    anonymous = expect(
        submit_crime.sync_detailed(client=anon, body=models.SubmitBody.from_dict(report_body)),
        201, models.Submitted, "anonymous submit (no token)",
    )
    assert isinstance(anonymous.tracking_token, str), anonymous.tracking_token
    expect(
        get_crime.sync_detailed(anonymous.id, client=anon,
                                x_tracking_token=anonymous.tracking_token,
                                x_min_position=anonymous.position),
        200, models.ReporterReportView, "tracking-token holder reads the report",
    )

    d = expect(
        dispatch.sync_detailed(
            client=dispatcher,
            body=models.DispatchBody.from_dict(
                {"crime_id": str(rid), "patrol_id": str(patrol.id)}
            ),
        ),
        200, models.Dispatched, "dispatch",
    )
    # The steps whose body is optional and empty: left out.
    written = (models.WrittenStaffReport, models.WrittenReporterReport)
    r = expect(accept.sync_detailed(rid, client=officer), 200, written, "accept")
    assert status_of(r) == "ACCEPTED", status_of(r)
    r = expect(respond.sync_detailed(rid, client=officer), 200, written, "respond")
    assert status_of(r) == "RESPONDING", status_of(r)
    r = expect(
        resolve.sync_detailed(rid, client=officer,
                              body=models.ResolveBody(resolution_notes="Bike returned")),
        200, written, "resolve",
    )
    assert status_of(r) == "RESOLVED", status_of(r)
    r = expect(approve_closure.sync_detailed(rid, client=supervisor), 200, written,
               "approve closure")
    assert status_of(r) == "CLOSED", status_of(r)
    seen = expect(
        get_crime.sync_detailed(rid, client=citizen, x_min_position=r.position),
        200, models.ReporterReportView, "reporter reads the closed report",
    )
    assert status_of(seen) == "CLOSED", status_of(seen)
    assert d is not None
    print(f"client contract: {calls} calls through the generated client, report {rid} CLOSED")




if __name__ == "__main__":
    main()
