"""A deterministic, synthetic demo data set for Shanghai: cases, agents, staff and a day's visits.

Every value is generated from a seeded `random.Random`, never from the clock, so the same seed
always yields the same rows. Names, IDs, phones and addresses are synthetic but realistic in
shape (national IDs carry a valid ISO 7064 check digit) so imports and masking are exercised.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from server.domain.routing import haversine_m

DEFAULT_SEED = 20261124
DEMO_AS_OF = date(2026, 11, 24)
TIME_ZONE = "Asia/Shanghai"
CURRENCY = "CNY"
LAT_RANGE = (31.10, 31.35)
LON_RANGE = (121.30, 121.65)

Row = dict[str, Any]


@dataclass(frozen=True)
class District:
    """An urban district: where its homes cluster, how many cases it holds, its streets."""

    name: str
    label: str
    id_area_code: str
    lat: float
    lon: float
    spread: float
    weight: int
    streets: tuple[str, ...]


DISTRICTS: tuple[District, ...] = (
    District("Huangpu", "Huangpu District", "310101", 31.227, 121.487, 0.015, 6,
             ("Nanjing East Road", "Xizang Middle Road", "Fuxing East Road", "Henan South Road")),
    District("Xuhui", "Xuhui District", "310104", 31.183, 121.437, 0.025, 10,
             ("Zhaojiabang Road", "Hengshan Road", "Caoxi North Road", "Longhua Middle Road")),
    District("Changning", "Changning District", "310105", 31.218, 121.400, 0.020, 7,
             ("Yan'an West Road", "Hongqiao Road", "Tianshan Road", "Xianxia Road")),
    District("Jing'an", "Jing'an District", "310106", 31.250, 121.455, 0.020, 9,
             ("Nanjing West Road", "Changde Road", "Yanchang Middle Road", "Gonghexin Road")),
    District("Putuo", "Putuo District", "310107", 31.253, 121.398, 0.020, 9,
             ("Caoyang Road", "Zhenbei Road", "Changshou Road", "Tongchuan Road")),
    District("Hongkou", "Hongkou District", "310109", 31.270, 121.495, 0.015, 7,
             ("Sichuan North Road", "Quyang Road", "Dalian Road", "Guangzhong Road")),
    District("Yangpu", "Yangpu District", "310110", 31.275, 121.525, 0.020, 9,
             ("Huangxing Road", "Kongjiang Road", "Guoding Road", "Changyang Road")),
    District("Pudong", "Pudong New Area", "310115", 31.215, 121.560, 0.040, 25,
             ("Century Avenue", "Zhangyang Road", "Pudong South Road", "Yanggao Middle Road",
              "Dongfang Road", "Jinqiao Road")),
    District("Minhang", "Minhang District", "310112", 31.145, 121.390, 0.030, 14,
             ("Qixin Road", "Humin Road", "Gudai Road", "Hongxin Road")),
)  # fmt: skip

# Many Shanghai residents were born elsewhere; their ID numbers carry their birthplace's code.
OTHER_AREA_CODES = ("320102", "330106", "340104", "410105", "420106", "510107", "370102")
SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Song",
    "Tang", "Han", "Feng", "Deng", "Cao", "Peng", "Zeng", "Shen", "Jiang", "Cai", "Ye", "Lu",
)  # fmt: skip
GIVEN_NAMES = (
    "Fang", "Wei", "Min", "Jing", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie", "Juan",
    "Tao", "Ming", "Chao", "Xiuying", "Xiulan", "Xia", "Ping", "Gang", "Hui", "Hong", "Jian",
    "Ling", "Na", "Bin", "Xin", "Hao", "Haiyan", "Zhiqiang", "Jianguo", "Jianhua", "Guoqiang",
    "Lihua", "Xiaoling", "Yuting", "Zihan", "Haoran", "Yichen", "Shuang", "Mei", "Rui", "Wen",
)  # fmt: skip
EMPLOYER_NAMES = (
    "Huaxin", "Dongfang", "Jinqiao", "Shenda", "Pujiang", "Hengtong", "Zhongyuan", "Tianrui",
    "Baolong", "Ruifeng", "Yuanda", "Kaixuan", "Xinhe", "Longsheng",
)  # fmt: skip
EMPLOYER_KINDS = (
    "Logistics Co., Ltd.", "Trading Co., Ltd.", "Technology Co., Ltd.", "Catering Co., Ltd.",
    "Property Management Co., Ltd.", "Garment Factory", "Auto Parts Co., Ltd.",
    "Construction Engineering Co., Ltd.", "Retail Co., Ltd.", "Medical Devices Co., Ltd.",
)  # fmt: skip
# Mobile prefixes of the three carriers; 154 was never issued.
MOBILE_PREFIXES = (
    tuple(f"13{d}" for d in range(10))
    + tuple(f"15{d}" for d in range(10) if d != 4)
    + tuple(f"18{d}" for d in range(10))
)
RELATIONS = ("spouse", "parent", "sibling", "child", "colleague", "friend")
FAMILY = frozenset({"parent", "sibling", "child"})
# product: (share of cases, smallest and largest overdue amount in CNY)
PRODUCTS: Mapping[str, tuple[float, float, float]] = {
    "Credit card": (0.35, 800.0, 60_000.0),
    "Personal loan": (0.30, 3_000.0, 120_000.0),
    "Consumer installment": (0.25, 300.0, 20_000.0),
    "Auto loan": (0.10, 2_500.0, 45_000.0),
}
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
VISIT_NOTES: Mapping[str, tuple[str, ...]] = {
    "home_visit": (
        "Confirm current address and who lives there.",
        "Explain the overdue balance and discuss repayment options.",
        "Usually home after 18:00.",
        "Gated compound: register at the guard post.",
        "Leave a contact card if nobody answers.",
        "Ask for a realistic repayment date.",
    ),
    "agreement_signing": (
        "Bring the repayment agreement for signature.",
        "Instalment plan agreed by phone; sign it on site.",
    ),
    "follow_up": (
        "Follow up on last week's promise to pay.",
        "Check progress since the previous visit.",
    ),
}


def national_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a Chinese resident ID number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def demo_case_rows(
    count: int = 2000, seed: int = DEFAULT_SEED, *, as_of: date = DEMO_AS_OF
) -> list[Row]:
    """Case-import rows; about 5% are a second case of an earlier borrower."""
    rng = random.Random(seed)
    borrowers: list[Row] = []
    used_ids: set[str] = set()
    used_phones: set[str] = set()
    rows: list[Row] = []
    for number in range(1, count + 1):
        if borrowers and rng.random() < 0.05:
            borrower = rng.choice(borrowers)
        else:
            borrower = _borrower(rng, len(borrowers) + 1, used_ids, used_phones)
            borrowers.append(borrower)
        rows.append(_case_row(rng, number, borrower, as_of))
    return rows


def demo_agents(count: int = 20, seed: int = DEFAULT_SEED) -> list[Row]:
    """Field agents, spread over the districts in proportion to their caseload."""
    rng = random.Random(seed)
    agents: list[Row] = []
    for index, district in enumerate(_apportion(count), start=1):
        lat, lon = _point_near(rng, district.lat, district.lon, district.spread / 3)
        agents.append(
            {
                "username": f"agent{index:02d}",
                "display_name": _person_name(rng),
                "badge_number": f"B-{1000 + index}",
                "region": district.name,
                "home_lat": lat,
                "home_lon": lon,
                "time_zone": TIME_ZONE,
            }
        )
    return agents


def demo_staff() -> list[Row]:
    """Office accounts: two dispatchers, a privacy officer and an administrator."""
    return [
        {"username": "dispatcher01", "role": "dispatcher", "display_name": "Chen Jing"},
        {"username": "dispatcher02", "role": "dispatcher", "display_name": "Zhou Lei"},
        {"username": "privacy01", "role": "privacy_officer", "display_name": "Lin Mei"},
        {"username": "admin01", "role": "admin", "display_name": "Gao Wen"},
    ]


def demo_visit_plan(
    case_rows: Sequence[Mapping[str, Any]],
    agents: Sequence[Mapping[str, Any]],
    day: date,
    per_agent: int = 12,
    seed: int = DEFAULT_SEED,
) -> list[Row]:
    """A day of visits: each agent gets the visitable cases nearest its home base."""
    rng = random.Random(seed)
    assignments = _assign_nearest(_visitable(case_rows), agents, per_agent)
    return [
        _visit(rng, case["case_external_id"], agent["username"], day)
        for agent, cases in zip(agents, assignments, strict=True)
        for case in cases
    ]


def _borrower(rng: random.Random, number: int, used_ids: set[str], used_phones: set[str]) -> Row:
    """Borrower fields of one synthetic person living in a weighted-random district."""
    home = rng.choices(DISTRICTS, weights=[d.weight for d in DISTRICTS])[0]
    lat, lon = _point_near(rng, home.lat, home.lon, home.spread)
    born = _birth_date(rng)
    employed = rng.random() >= 0.05  # some borrowers are retired or out of work
    surname = rng.choice(SURNAMES)
    return {
        "borrower_external_id": f"BRW-{number:06d}",
        "full_name": f"{surname} {rng.choice(GIVEN_NAMES)}",
        "national_id": _national_id(rng, home, born, used_ids),
        "phones": [_mobile(rng, used_phones) for _ in range(rng.choices((1, 2), (7, 3))[0])],
        "home_address": _address(rng, home),
        "home_lat": lat,
        "home_lon": lon,
        "work_address": _address(rng, _work_district(rng)) if employed else None,
        "employer": _employer(rng) if employed else None,
        "date_of_birth": born.isoformat(),
        "contacts": _contacts(rng, surname, used_phones),
        "income": _money(_monthly_income(rng, employed)),
        "time_zone": TIME_ZONE,
    }


def _case_row(rng: random.Random, number: int, borrower: Row, as_of: date) -> Row:
    """One import row: the borrower's fields (copied) around this case's loan fields."""
    product = rng.choices(list(PRODUCTS), weights=[v[0] for v in PRODUCTS.values()])[0]
    _, low, high = PRODUCTS[product]
    days_past_due = min(360, 1 + int(rng.expovariate(1 / 75)))
    paid_on = None
    if rng.random() >= 0.12:  # the rest never paid anything
        paid_on = as_of - timedelta(days=days_past_due + rng.randint(0, 30))
    fields = {key: _copy(value) for key, value in borrower.items()}
    return {
        "case_external_id": f"CASE-{number:06d}",
        "borrower_external_id": fields.pop("borrower_external_id"),
        **fields,
        "product": product,
        "overdue_amount": _money(_log_uniform(rng, low, high)),
        "currency": CURRENCY,
        "days_past_due": days_past_due,
        "last_payment_date": paid_on.isoformat() if paid_on else None,
        "last_payment_amount": _money(_log_uniform(rng, 200, 5_000)) if paid_on else None,
        "hardship": rng.random() < 0.03,
        "do_not_visit": rng.random() < 0.02,
        "legal_hold": rng.random() < 0.01,
        "status": "open",
    }


def _copy(value: Any) -> Any:
    """A fresh copy of lists of scalars or dicts, so rows of one borrower never share state."""
    if isinstance(value, list):
        return [dict(item) if isinstance(item, dict) else item for item in value]
    return value


def _point_near(rng: random.Random, lat: float, lon: float, spread: float) -> tuple[float, float]:
    """A point scattered around a centre, redrawn until it falls inside the city's box."""
    while True:
        # Longitude degrees are shorter here, so widen them to keep clusters round on the map.
        point_lat = rng.gauss(lat, spread)
        point_lon = rng.gauss(lon, spread / math.cos(math.radians(lat)))
        if LAT_RANGE[0] <= point_lat <= LAT_RANGE[1] and LON_RANGE[0] <= point_lon <= LON_RANGE[1]:
            return round(point_lat, 6), round(point_lon, 6)


def _birth_date(rng: random.Random) -> date:
    """A birth date making the borrower roughly 22 to 64 years old in 2026."""
    first, last = date(1962, 1, 1).toordinal(), date(2004, 12, 31).toordinal()
    return date.fromordinal(rng.randint(first, last))


def _national_id(rng: random.Random, home: District, born: date, used: set[str]) -> str:
    """A unique 18-character resident ID: area code, birth date, sequence, check character."""
    area = home.id_area_code if rng.random() < 0.7 else rng.choice(OTHER_AREA_CODES)
    while True:
        first17 = f"{area}{born:%Y%m%d}{rng.randint(1, 999):03d}"
        if first17 not in used:
            used.add(first17)
            return first17 + national_id_check_char(first17)


def _mobile(rng: random.Random, used: set[str]) -> str:
    """A unique 11-digit mainland mobile number."""
    while True:
        number = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if number not in used:
            used.add(number)
            return number


def _person_name(rng: random.Random, surname: str | None = None) -> str:
    """A pinyin name, surname first as written in China."""
    return f"{surname or rng.choice(SURNAMES)} {rng.choice(GIVEN_NAMES)}"


def _address(rng: random.Random, district: District) -> str:
    """A street address in English; most homes sit in a lane (compound) off a main road."""
    street = rng.choice(district.streets)
    if rng.random() < 0.6:
        room = f"Room {rng.randint(1, 18)}{rng.randint(1, 4):02d}"
        place = f"{room}, No. {rng.randint(1, 40)}, Lane {rng.randint(1, 1500)} {street}"
    else:
        place = f"No. {rng.randint(1, 2000)} {street}"
    return f"{place}, {district.label}, Shanghai"


def _work_district(rng: random.Random) -> District:
    """Offices concentrate in the central business districts and Pudong."""
    central = [d for d in DISTRICTS if d.name in {"Huangpu", "Jing'an", "Pudong", "Xuhui"}]
    return rng.choice(central) if rng.random() < 0.6 else rng.choice(DISTRICTS)


def _employer(rng: random.Random) -> str:
    """A synthetic company name."""
    return f"Shanghai {rng.choice(EMPLOYER_NAMES)} {rng.choice(EMPLOYER_KINDS)}"


def _contacts(rng: random.Random, surname: str, used_phones: set[str]) -> list[Row]:
    """Zero to two family or third-party contacts, at most one spouse."""
    relations = rng.sample(RELATIONS, rng.choices((0, 1, 2), (3, 4.5, 2.5))[0])
    return [
        {
            # Blood relatives usually share the surname; spouses keep their own in China.
            "name": _person_name(rng, surname if relation in FAMILY else None),
            "relation": relation,
            "phone": _mobile(rng, used_phones),
        }
        for relation in relations
    ]


def _monthly_income(rng: random.Random, employed: bool) -> float:
    """Monthly income in CNY, rounded to hundreds; pensions and benefits when not employed."""
    median = 9_000 if employed else 3_500
    return max(2_500.0, min(60_000.0, round(rng.lognormvariate(math.log(median), 0.45), -2)))


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    """A value whose order of magnitude is uniform: small debts are as common as large ones."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _money(amount: float) -> str:
    """A decimal string with exactly two places, computed in whole cents."""
    cents = round(amount * 100)
    return f"{cents // 100}.{cents % 100:02d}"


def _apportion(count: int) -> list[District]:
    """Districts for count agents by largest remainder on caseload weights, in district order."""
    total = sum(d.weight for d in DISTRICTS)
    quotas = [count * d.weight / total for d in DISTRICTS]
    seats = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(DISTRICTS)), key=lambda i: (-(quotas[i] - seats[i]), i))
    for i in by_remainder[: count - sum(seats)]:
        seats[i] += 1
    return [d for d, n in zip(DISTRICTS, seats, strict=True) for _ in range(n)]


def _visitable(case_rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Open, located cases of borrowers none of whose cases forbids a visit."""
    # A hardship or do-not-visit flag on one loan protects the person, not only that loan.
    barred = {_borrower_key(row) for row in case_rows if _visit_forbidden(row)}
    return [
        row
        for row in case_rows
        if row.get("status") == "open"
        and _borrower_key(row) not in barred
        and row.get("home_lat") is not None
        and row.get("home_lon") is not None
    ]


def _visit_forbidden(row: Mapping[str, Any]) -> bool:
    """True when a case carries a hardship, do-not-visit or legal-hold flag."""
    return bool(row.get("hardship") or row.get("do_not_visit") or row.get("legal_hold"))


def _borrower_key(row: Mapping[str, Any]) -> str:
    """The borrower's external id, or the case's when a row names no borrower."""
    return str(row.get("borrower_external_id") or row["case_external_id"])


def _assign_nearest(
    cases: Sequence[Mapping[str, Any]], agents: Sequence[Mapping[str, Any]], per_agent: int
) -> list[list[Mapping[str, Any]]]:
    """Agents take turns picking their nearest free case, so neighbours share fairly."""
    ranked = [_by_distance(cases, agent) for agent in agents]
    cursors = [0] * len(agents)
    taken_cases: set[str] = set()
    # One visit per household a day: two cases of one borrower are discussed together.
    taken_borrowers: set[str] = set()
    picks: list[list[Mapping[str, Any]]] = [[] for _ in agents]
    for _ in range(per_agent):
        for a, queue in enumerate(ranked):
            while cursors[a] < len(queue):
                case = queue[cursors[a]]
                cursors[a] += 1
                borrower = _borrower_key(case)
                if case["case_external_id"] in taken_cases or borrower in taken_borrowers:
                    continue
                taken_cases.add(case["case_external_id"])
                taken_borrowers.add(borrower)
                picks[a].append(case)
                break
    return picks


def _by_distance(
    cases: Sequence[Mapping[str, Any]], agent: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """Cases sorted by distance from the agent's home base, ties by case id."""

    def key(case: Mapping[str, Any]) -> tuple[float, str]:
        home = (agent["home_lat"], agent["home_lon"])
        return haversine_m(*home, case["home_lat"], case["home_lon"]), case["case_external_id"]

    return sorted(cases, key=key)


def _visit(rng: random.Random, case_id: str, agent: str, day: date) -> Row:
    """One planned visit with purpose, optional time window, notice and a dispatcher note."""
    purpose = rng.choices(("home_visit", "agreement_signing", "follow_up"), (80, 8, 12))[0]
    # A signing needs the borrower at home, so it is always booked for a time.
    window = _window(rng) if purpose == "agreement_signing" or rng.random() < 0.3 else None
    return {
        "case_external_id": case_id,
        "agent_username": agent,
        "visit_date": day.isoformat(),
        "window_start": window[0] if window else None,
        "window_end": window[1] if window else None,
        "purpose": purpose,
        "notes": rng.choice(VISIT_NOTES[purpose]),
        "notice_kind": _notice_kind(rng, has_window=window is not None),
        "route_order": None,
    }


def _window(rng: random.Random) -> tuple[str, str]:
    """A window of one to two hours on the half hour, inside 09:00-20:00."""
    start = 9 * 60 + 30 * rng.randint(0, 18)
    end = min(start + rng.choice((60, 90, 120)), 20 * 60)
    return f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"


def _notice_kind(rng: random.Random, *, has_window: bool) -> str | None:
    """A time window means an appointment was made; otherwise a letter, an SMS or nothing."""
    if has_window:
        return "appointment" if rng.random() < 0.85 else "sms"
    return rng.choices(("letter", "sms", None), (45, 35, 20))[0]
