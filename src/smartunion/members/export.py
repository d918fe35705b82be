"""The member list as an export dataset (会员名册导出), through the security export guard."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from smartunion.errors import InvalidInput
from smartunion.i18n import Translator, translator
from smartunion.members import repository as repo
from smartunion.members.models import EmploymentForm, Gender, Member, MemberStatus
from smartunion.members.service import ID_FIELD, PHONE_FIELD, narrowing, search_filter
from smartunion.orgs.models import UnionOrg
from smartunion.security import identifiers
from smartunion.security.crypto import FieldCrypto
from smartunion.security.exports import register_dataset
from smartunion.security.masking import mask_birth_date, mask_id_number, mask_name, mask_phone
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal

_COLUMNS = [
    ("member_no", "会员编号", "Member no."),
    ("name", "姓名", "Name"),
    ("gender", "性别", "Gender"),
    ("birth_date", "出生日期", "Birth date"),
    ("id_number", "公民身份号码", "ID number"),
    ("phone", "手机号码", "Mobile"),
    ("ethnicity", "民族", "Ethnicity"),
    ("education", "学历", "Education"),
    ("org", "所属工会", "Union"),
    ("enterprise", "工作单位", "Employer"),
    ("occupation", "职业/工种", "Occupation"),
    ("skill_level", "技能等级", "Skill level"),
    ("employment_form", "用工形式", "Employment form"),
    ("join_date", "入会日期", "Joined"),
    ("status", "会籍状态", "Status"),
]
_FILTER_KEYS = {
    "q",
    "lookup",
    "enterprise_id",
    "employment_form",
    "status",
    "gender",
    "age_band",
    "industry",
}
_LOOKUP_FIELDS = {"id_number": ID_FIELD, "phone": PHONE_FIELD}


def protect_filters(crypto: FieldCrypto, filters: dict[str, Any]) -> dict[str, Any]:
    """Filters as an export request may store them: an ID number or phone typed as ``q``
    becomes ``lookup`` (kind, masked form, blind indexes), so neither the request row nor
    its audit event holds the number. Anything else is left for :func:`_filter` to judge."""
    q = filters.get("q")
    term = identifiers.classify(q) if isinstance(q, str) else None
    if term is None:
        return filters
    kind, value = term
    where = search_filter(crypto, value)
    bidx = where.id_number_bidx if kind == "id_number" else where.phone_bidx
    out = {k: v for k, v in filters.items() if k != "q"}
    out["lookup"] = {"kind": kind, "masked": identifiers.mask_term(value), "bidx": list(bidx)}
    return out


def _lookup(value: Any) -> dict[str, tuple[str, ...]]:
    if (
        not isinstance(value, dict)
        or value.get("kind") not in _LOOKUP_FIELDS
        or not isinstance(value.get("bidx"), list)
        or not all(isinstance(b, str) for b in value["bidx"])
    ):
        raise InvalidInput("filters", "lookup: {kind: id_number|phone, bidx: [...]}")
    key = "id_number_bidx" if value["kind"] == "id_number" else "phone_bidx"
    return {key: tuple(value["bidx"])}


def _filter(org: UnionOrg, filters: dict[str, Any]) -> repo.MemberFilter:
    # Filters arrive as free JSON from the API: a wrong one is the caller's mistake (422),
    # not a server error.
    unknown = set(filters) - _FILTER_KEYS
    if unknown:
        raise InvalidInput(
            "filters", f"unknown filters {sorted(unknown)}; known: {sorted(_FILTER_KEYS)}"
        )
    form = filters.get("employment_form")
    status = filters.get("status")
    gender = filters.get("gender")
    lookup = _lookup(filters["lookup"]) if "lookup" in filters else {}
    try:
        return repo.MemberFilter(
            id_number_bidx=lookup.get("id_number_bidx", ()),
            phone_bidx=lookup.get("phone_bidx", ()),
            q=filters.get("q"),
            org_path=org.path,
            enterprise_id=filters.get("enterprise_id"),
            employment_form=EmploymentForm(form) if form else None,
            status=MemberStatus(status) if status else None,
            **narrowing(
                gender=Gender(gender) if gender else None,
                age_band=filters.get("age_band") or None,
                industry=filters.get("industry") or None,
            ),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidInput("filters", str(exc)) from None


class MemberDataset:
    name = "members"
    needs = Permission.MEMBER_READ

    def headers(self, lang: str) -> list[str]:
        return [en if lang == "en" else zh for _, zh, en in _COLUMNS]

    def count(
        self, session: Session, principal: Principal, org: UnionOrg, filters: dict[str, Any]
    ) -> int:
        return repo.count(session, principal, _filter(org, filters))

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
    ) -> Iterator[Sequence[object]]:
        t = translator(lang)
        for batch in repo.stream(session, principal, _filter(org, filters)):
            orgs, ents = repo.names_for(
                session,
                {m.org_id for m in batch},
                {m.enterprise_id for m in batch if m.enterprise_id},
            )
            for m in batch:
                yield self._row(m, crypto, t, orgs, ents, unmasked=unmasked)
            for m in batch:  # keep the identity map small on long exports
                session.expunge(m)

    @staticmethod
    def _row(
        m: Member,
        crypto: FieldCrypto,
        t: Translator,
        orgs: dict[int, str],
        ents: dict[int, str],
        *,
        unmasked: bool,
    ) -> list[object]:
        id_number = crypto.decrypt(m.id_number_enc, ID_FIELD)
        phone = crypto.decrypt(m.phone_enc, PHONE_FIELD) if m.phone_enc else ""
        return [
            m.member_no,
            m.name if unmasked else mask_name(m.name),
            t.enum(m.gender),
            m.birth_date.isoformat() if unmasked else mask_birth_date(m.birth_date),
            id_number if unmasked else mask_id_number(id_number),
            phone if unmasked or not phone else mask_phone(phone),
            m.ethnicity,
            t.enum(m.education),
            orgs.get(m.org_id, ""),
            ents.get(m.enterprise_id, "") if m.enterprise_id else "",
            m.occupation,
            t.enum(m.skill_level),
            t.enum(m.employment_form),
            m.join_date.isoformat(),
            t.enum(m.status),
        ]


register_dataset(MemberDataset())
