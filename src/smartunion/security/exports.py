"""Export guard (导出审批): every export of personal data goes through here.

A request is counted first. While the requester's exports of the day stay within the
threshold (default 1,000 records) and masked, it is approved at once; past it, or unmasked,
a second person independent of the requester (``security.independence``: not the requester,
not who made their account or changed its role or organisation, with ``export:approve`` over
the whole organisation) must approve it. The file is produced only when the requester
downloads it, once, charged to the insider-leak guard (rows nobody else approved weigh in
the same daily budget as every other read; all count against the export quota), watermarked,
and audited with its row count and SHA-256.

Datasets register themselves (``register_dataset``); members are the first, later
capabilities add theirs through the same guard.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from smartunion.config import Settings
from smartunion.db import utcnow
from smartunion.errors import Conflict, InvalidInput, NotFound
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit, guard, independence
from smartunion.security.crypto import FieldCrypto
from smartunion.security.export_files import FileFormat, Watermark, write_csv, write_xlsx
from smartunion.security.models import ExportRequest, User
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import org_in_scope


class Dataset(Protocol):
    name: str
    needs: Permission

    def headers(self, lang: str) -> list[str]: ...

    def count(
        self, session: Session, principal: Principal, org: UnionOrg, filters: dict[str, Any]
    ) -> int: ...

    def rows(
        self,
        session: Session,
        principal: Principal,
        crypto: FieldCrypto,
        org: UnionOrg,
        filters: dict[str, Any],
        *,
        unmasked: bool,
        lang: str,
    ) -> Iterator[Sequence[object]]: ...


DATASETS: dict[str, Dataset] = {}


def register_dataset(dataset: Dataset) -> None:
    DATASETS[dataset.name] = dataset


@dataclass(frozen=True)
class ExportPolicy:
    approval_threshold: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ExportPolicy:
        return cls(approval_threshold=settings.export_approval_threshold)


def _dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise InvalidInput("dataset", f"unknown dataset {name!r}") from None


def _org(session: Session, principal: Principal, org_id: int) -> UnionOrg:
    org = session.scalar(select(UnionOrg).where(org_in_scope(principal), UnionOrg.id == org_id))
    if org is None:
        raise NotFound("organisation")
    return org


def request_export(
    session: Session,
    principal: Principal,
    policy: ExportPolicy,
    *,
    dataset: str,
    org_id: int,
    filters: dict[str, Any],
    file_format: FileFormat,
    unmasked: bool = False,
    reason: str = "",
) -> ExportRequest:
    principal.require(Permission.EXPORT_REQUEST)
    ds = _dataset(dataset)
    principal.require(ds.needs)
    if unmasked:
        principal.require(Permission.MEMBER_REVEAL)
        if len(reason.strip()) < 4:
            raise InvalidInput("reason", "an unmasked export needs a reason")
    org = _org(session, principal, org_id)
    count = ds.count(session, principal, org, filters)
    # The threshold holds for the day, not the request: exports split into parts (say, by
    # child organisation) add up, and the part that takes the day past it waits too.
    earlier = _approved_alone_today(session, principal)
    needs_approval = unmasked or earlier + count > policy.approval_threshold
    request = ExportRequest(
        uid=secrets.token_hex(8),
        requested_by=principal.user_id,
        dataset=dataset,
        org_id=org.id,
        filters=filters,
        file_format=file_format,
        unmasked=unmasked,
        reason=reason.strip(),
        record_count=count,
        status="pending" if needs_approval else "approved",
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        principal,
        "export.request",
        object_type="export",
        object_id=request.id,
        details={
            "dataset": dataset,
            "org_id": org.id,
            "filters": filters,
            "records": count,
            "unmasked": unmasked,
            "status": request.status,
            "uid": request.uid,
            "earlier_today": earlier,
        },
    )
    return request


def _approved_alone_today(session: Session, principal: Principal) -> int:
    """Records in the caller's exports of today that nobody else approved."""
    start = dt.datetime.combine(
        utcnow().astimezone(guard.LOCAL_TZ).date(), dt.time(), guard.LOCAL_TZ
    )
    total = session.scalar(
        select(func.sum(ExportRequest.record_count)).where(
            ExportRequest.requested_by == principal.user_id,
            ExportRequest.created_at >= start,
            ExportRequest.decided_by.is_(None),
            ExportRequest.status.in_(("approved", "downloaded")),
        )
    )
    return int(total or 0)


def visible_requests(session: Session, principal: Principal) -> Sequence[ExportRequest]:
    """The caller's own requests, and those they could approve."""
    if not principal.can(Permission.EXPORT_APPROVE):
        principal.require(Permission.EXPORT_REQUEST)
    stmt = select(ExportRequest)
    if principal.can(Permission.EXPORT_APPROVE):
        in_scope = select(UnionOrg.id).where(org_in_scope(principal))
        stmt = stmt.where(
            or_(
                ExportRequest.requested_by == principal.user_id,
                ExportRequest.org_id.in_(in_scope),
            )
        )
    else:
        stmt = stmt.where(ExportRequest.requested_by == principal.user_id)
    return session.scalars(stmt.order_by(ExportRequest.id.desc()).limit(200)).all()


def _visible(session: Session, principal: Principal, request_id: int) -> ExportRequest:
    for request in visible_requests(session, principal):
        if request.id == request_id:
            return request
    raise NotFound("export")


def decide(
    session: Session, principal: Principal, request_id: int, *, approve: bool, note: str
) -> ExportRequest:
    principal.require(Permission.EXPORT_APPROVE)
    request = _visible(session, principal, request_id)
    # Two people, independent of each other, the second over the data's whole scope.
    independence.require_independent(
        session,
        principal,
        request.requested_by,
        permission=Permission.EXPORT_APPROVE,
        org_id=request.org_id,
    )
    if request.status != "pending":
        raise Conflict(f"export {request.id} is {request.status}, not pending")
    request.status = "approved" if approve else "rejected"
    request.decided_by = principal.user_id
    request.decided_at = utcnow()
    request.decision_note = note[:300]
    audit.record(
        session,
        principal,
        "export.approve" if approve else "export.reject",
        object_type="export",
        object_id=request.id,
        details={"uid": request.uid},
    )
    return request


@dataclass(frozen=True)
class ExportFile:
    filename: str
    media_type: str
    content: bytes
    records: int
    sha256: str


def download(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    request_id: int,
    *,
    lang: str = "zh-CN",
    encoding: str = "utf-8-sig",
) -> ExportFile:
    request = session.scalar(
        select(ExportRequest).where(
            ExportRequest.id == request_id, ExportRequest.requested_by == principal.user_id
        )
    )
    if request is None:
        raise NotFound("export")
    if request.status != "approved":
        raise Conflict(f"export {request.id} is {request.status}")
    ds = _dataset(request.dataset)
    principal.require(ds.needs)
    org = _org(session, principal, request.org_id)
    # Charged at the approved size before any row is read: over quota, nothing is written.
    # Rows a second, independent person approved count only against the export quota; the
    # others weigh in the same read budget as every other read.
    kind: guard.Kind = "export_ok" if request.decided_by is not None else "export"
    guard.charge(session, principal, kind=kind, records=request.record_count)
    username = session.scalar(select(User.username).where(User.id == principal.user_id)) or ""
    stamp = Watermark(
        request.uid,
        username,
        utcnow().astimezone(guard.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
    )
    buffer = io.BytesIO()  # in memory: an export never touches the disk unasked
    rows = ds.rows(
        session, principal, crypto, org, request.filters, unmasked=request.unmasked, lang=lang
    )
    headers = ds.headers(lang)
    if request.file_format == "xlsx":
        written = write_xlsx(buffer, headers, _capped(rows, request.record_count), stamp)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        written = write_csv(
            buffer, headers, _capped(rows, request.record_count), stamp, encoding=encoding
        )
        media = "text/csv"
    content = buffer.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    request.status = "downloaded"
    request.downloaded_at = utcnow()
    audit.record(
        session,
        principal,
        "export.download",
        object_type="export",
        object_id=request.id,
        details={
            "uid": request.uid,
            "records": written,
            "sha256": digest,
            "format": request.file_format,
            "unmasked": request.unmasked,
        },
    )
    day = dt.date.today().strftime("%Y%m%d")
    return ExportFile(
        filename=f"{request.dataset}-{day}-{request.uid}.{request.file_format}",
        media_type=media,
        content=content,
        records=written,
        sha256=digest,
    )


def _capped(rows: Iterator[Sequence[object]], limit: int) -> Iterator[Sequence[object]]:
    """Never more rows than were approved, even if records were added since."""
    for i, row in enumerate(rows):
        if i >= limit:
            return
        yield row
