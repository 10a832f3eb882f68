"""The columns of the 31 legacy tables, as the stand-in's PostgreSQL tables declare them.

The real column lists are not available to this project, so these are modelled on UNI-ERP
conventions (upper-case names, ``..._CD`` codes from the B_MAJOR/B_MINOR code book, ``..._DT``
dates as CHAR(8) 'YYYYMMDD', ``..._YN`` flags, the INSRT_/UPDT_ audit columns) with the column
counts the old platform's write-up gives for the four large tables. Types are PostgreSQL types
chosen to behave like the SQL Server ones (DATETIME is ``timestamp(3)``, BIT is ``boolean``,
CHAR(n) pads).

Each column also says what its values mean (its ``kind``, e.g. a Korean person name, an order
number, a code of a B_MAJOR); the demo generator turns that into data. The primary key of every
stand-in table is the catalog's ``keys``; a check at import keeps this module and the catalog
in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from bodyfriend_assets.catalog import IDENTIFIER, LegacyTable, load_catalog

# ---------------------------------------------------------------------------------------------
# Types


@dataclass(frozen=True)
class SqlType:
    """A stand-in column type: a PostgreSQL type standing for the SQL Server type it mimics."""

    name: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.length is not None:
            return f"{self.name}({self.length})"
        if self.name == "numeric":
            return f"numeric({self.precision},{self.scale})"
        if self.name == "timestamp":
            return f"timestamp({self.precision})"
        return self.name

    @property
    def is_text(self) -> bool:
        return self.name in ("varchar", "char")

    def sqlalchemy(self) -> sa.types.TypeEngine:
        if self.name == "varchar":
            return sa.VARCHAR(self.length)
        if self.name == "char":
            return sa.CHAR(self.length)
        if self.name == "numeric":
            return sa.Numeric(self.precision, self.scale)
        if self.name == "timestamp":
            return postgresql.TIMESTAMP(precision=self.precision)
        return _SIMPLE_TYPES[self.name]()


_SIMPLE_TYPES = {
    "date": sa.Date,
    "integer": sa.Integer,
    "bigint": sa.BigInteger,
    "smallint": sa.SmallInteger,
    "boolean": sa.Boolean,
    "double precision": postgresql.DOUBLE_PRECISION,
    "uuid": postgresql.UUID,
    "bytea": postgresql.BYTEA,
}


def varchar(length: int) -> SqlType:
    return SqlType("varchar", length=length)


def char(length: int) -> SqlType:
    """SQL Server CHAR(n): shorter values are padded with spaces to n."""
    return SqlType("char", length=length)


def numeric(precision: int, scale: int) -> SqlType:
    return SqlType("numeric", precision=precision, scale=scale)


DATETIME = SqlType("timestamp", precision=3)  # SQL Server DATETIME: milliseconds, 1/300 s steps
DATE = SqlType("date")
INTEGER = SqlType("integer")
BIGINT = SqlType("bigint")
SMALLINT = SqlType("smallint")
BIT = SqlType("boolean")
FLOAT = SqlType("double precision")
UUID = SqlType("uuid")  # UNIQUEIDENTIFIER
BYTEA = SqlType("bytea")  # VARBINARY(MAX) / IMAGE


# ---------------------------------------------------------------------------------------------
# Columns and tables

Kind = Literal[
    # The row's own identity, a function of its position in the table.
    "serial",  # running number 1..n
    "order_no",  # order number: prefix '02'/'82'/'HI'/'K2'/'ON' + YYMMDD + daily serial
    "doc_no",  # arg prefix: receipt-style number, prefix + YYMMDD + daily serial
    "cust_no",  # customer number
    "code_no",  # arg (prefix, digits): master-data code, prefix + zero-padded running number
    "child_no",  # arg digits or None: position of the row among its parent's rows (1..per_parent)
    "child_value",  # arg tuple: the value at the row's position among its parent's rows
    "label",  # arg vocabulary name: the vocabulary's entry at the row's position
    # Another table's column.
    "ref",  # arg 'TABLE.COLUMN': the row this one belongs to (up the parent chain), else any row
    "pick",  # arg 'TABLE.COLUMN': any row of TABLE, chosen on its own
    # Time. Day-based values follow the day the row was entered.
    "insrt_dt",  # audit: when the row was inserted
    "updt_dt",  # audit: when the row was last updated (the change cursor)
    "row_ymd",  # arg (first, last): a day first..last days after the row's day ('YYYYMMDD' or date)
    "row_time",  # arg (first, last): a moment first..last minutes after the row was inserted
    "ymd",  # arg ('YYYYMMDD', 'YYYYMMDD'): any day in that range
    # Drawn values.
    "code",  # arg MAJOR_CD: a MINOR_CD of that B_MAJOR
    "person_name",  # Korean name, family name first
    "phone",  # arg 'mobile' or 'home'
    "enc_phone",  # arg 'mobile' or 'home': the phone number encrypted, for RENTAL.FN_DEC
    "email",
    "zip",  # five-digit postal code
    "addr1",  # province, district, neighbourhood
    "addr2",  # lot number or apartment, building, unit
    "yn",  # arg share of 'Y': 'Y' or 'N'
    "flag",  # arg share of true: BIT
    "amount",  # arg (low, high, step): a number from low to high in steps
    "integer",  # arg (low, high)
    "real",  # arg (low, high): a floating-point number
    "word",  # arg vocabulary name or tuple of values: one of them
    "memo",  # free text, with the commas, quotes, tabs, newlines and backslashes of real input
    "digits",  # arg count: a string of that many digits (account, card, invoice numbers)
    "uuid",
    "image",  # a small binary image (a scanned signature)
]

RowCount = int | Literal["large", "medium"]


@dataclass(frozen=True)
class Column:
    name: str  # the ERP's upper-case name; the stand-in column is its lower case
    type: SqlType
    kind: Kind
    arg: object = None
    nullable: bool = True
    blank: float = 0.0  # share of rows left empty: NULL, and for text also '' (half each)

    @property
    def pg_name(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class StandInTable:
    """One catalog table as the stand-in declares it.

    ``rows`` is the table's size: ``large`` (the seeding's ``rows``), ``medium`` (a quarter of
    it) or a fixed number. With a ``parent``, every row belongs to a row of that table: with
    ``per_parent`` k, each run of k rows to its own parent row; without, to any parent row
    entered before it. ``ref`` columns follow this chain.
    """

    qualified_name: str
    rows: RowCount
    columns: tuple[Column, ...]
    parent: str | None = None
    per_parent: int | None = None

    @property
    def catalog_entry(self) -> LegacyTable:
        return load_catalog().by_name(self.qualified_name)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name.upper():
                return column
        raise KeyError(f"{self.qualified_name} has no column {name!r}")


def audit(cursor: bool = False) -> tuple[Column, ...]:
    """UNI-ERP's audit columns; ``cursor`` for incremental tables, whose UPDT_DT is never NULL."""
    user = varchar(20)
    return (
        Column("INSRT_USER_ID", user, "pick", "V_ERP_USER.USER_ID", nullable=False),
        Column("INSRT_DT", DATETIME, "insrt_dt", nullable=not cursor),
        Column("UPDT_USER_ID", user, "pick", "V_ERP_USER.USER_ID", blank=0.0 if cursor else 0.02),
        Column("UPDT_DT", DATETIME, "updt_dt", nullable=not cursor),
    )


# ---------------------------------------------------------------------------------------------
# The code book: B_MAJOR headers and their B_MINOR lines


@dataclass(frozen=True)
class CodeMajor:
    major_cd: str
    major_nm: str
    minors: tuple[tuple[str, str], ...]  # (MINOR_CD, MINOR_NM)


def _major(major_cd: str, major_nm: str, *minors: str) -> CodeMajor:
    pairs = tuple(tuple(m.split(" ", 1)) for m in minors)
    return CodeMajor(major_cd, major_nm, pairs)  # type: ignore[arg-type]


CODE_BOOK: tuple[CodeMajor, ...] = (
    _major("C1001", "성별", "M 남성", "F 여성"),
    _major("C1002", "고객등급", "VVIP VVIP", "VIP VIP", "GOLD 골드", "SILVER 실버", "BRONZE 브론즈",
           "NORMAL 일반"),
    _major("C1003", "고객구분", "01 개인", "02 개인사업자", "03 법인", "04 외국인", "05 임직원"),
    _major("C1004", "시도", "11 서울특별시", "26 부산광역시", "27 대구광역시", "28 인천광역시",
           "29 광주광역시", "30 대전광역시", "31 울산광역시", "36 세종특별자치시", "41 경기도",
           "43 충청북도", "44 충청남도", "46 전라남도", "47 경상북도", "48 경상남도",
           "50 제주특별자치도", "51 강원특별자치도", "52 전북특별자치도"),
    _major("C1005", "직업", "001 회사원", "002 공무원", "003 자영업", "004 전문직", "005 주부",
           "006 학생", "007 교사", "008 의료인", "009 군인", "010 농어업", "011 프리랜서",
           "012 무직", "013 은퇴", "099 기타"),
    _major("C1006", "양음력", "S 양력", "L 음력"),
    _major("C1007", "고객상태", "10 정상", "20 휴면", "30 탈퇴", "40 거래정지", "50 사망"),
    _major("C1008", "계약자관계", "01 본인", "02 배우자", "03 자녀", "04 부모", "05 형제자매",
           "06 친척", "07 지인", "99 기타"),
    _major("R1001", "주문상태", "10 주문접수", "15 신용조회", "20 배송준비", "25 출고",
           "30 설치완료", "40 렌탈중", "45 연체", "50 만기", "60 중도해지", "70 소유권이전",
           "90 주문취소"),
    _major("R1002", "계약유형", "01 렌탈", "02 일시불", "03 할부", "04 리스", "05 재렌탈",
           "06 체험렌탈"),
    _major("R1003", "판매채널", "01 직영라운지", "02 백화점", "03 홈쇼핑", "04 온라인몰",
           "05 오픈마켓", "06 대리점", "07 B2B", "08 방문판매", "09 TM", "10 임직원몰"),
    _major("R1004", "결제수단", "CMS 자동이체", "CARD 신용카드", "VACT 가상계좌", "CASH 현금",
           "KPAY 카카오페이", "NPAY 네이버페이"),
    _major("R1005", "은행", "004 KB국민은행", "088 신한은행", "020 우리은행", "081 하나은행",
           "011 NH농협은행", "003 IBK기업은행", "023 SC제일은행", "090 카카오뱅크",
           "089 케이뱅크", "092 토스뱅크", "071 우체국", "032 부산은행", "031 대구은행",
           "034 광주은행", "037 전북은행", "039 경남은행", "035 제주은행", "045 새마을금고",
           "048 신협", "007 수협은행"),
    _major("R1006", "카드사", "01 BC카드", "02 KB국민카드", "03 삼성카드", "04 신한카드",
           "05 현대카드", "06 롯데카드", "07 하나카드", "08 우리카드", "09 NH농협카드",
           "10 씨티카드"),
    _major("R1007", "약정기간", "12 12개월", "24 24개월", "36 36개월", "39 39개월", "48 48개월",
           "57 57개월", "60 60개월"),
    _major("R2001", "접수유형", "10 A/S", "20 이전설치", "30 회수", "40 정기점검", "50 불만",
           "60 단순문의", "70 부품판매"),
    _major("R2002", "처리상태", "10 접수", "20 배정", "30 방문예정", "40 처리중", "50 처리완료",
           "60 보류", "90 취소"),
    _major("R2003", "처리결과", "01 수리완료", "02 부품교체", "03 제품교환", "04 재방문필요",
           "05 고객부재", "06 이상없음", "07 사용법안내", "99 기타"),
    _major("R2004", "접수경로", "01 콜센터", "02 홈페이지", "03 카카오톡", "04 모바일앱",
           "05 라운지", "06 엔지니어", "07 챗봇"),
    _major("R2005", "서비스센터", "SC01 서울센터", "SC02 경기북부센터", "SC03 경기남부센터",
           "SC04 인천센터", "SC05 강원센터", "SC06 대전센터", "SC07 충북센터", "SC08 광주센터",
           "SC09 전북센터", "SC10 대구센터", "SC11 부산센터", "SC12 울산센터", "SC13 경남센터",
           "SC14 제주센터"),
    _major("R2006", "우선순위", "1 긴급", "2 높음", "3 보통", "4 낮음"),
    _major("R3001", "배송상태", "10 출고요청", "20 출고완료", "30 배송중", "40 설치완료",
           "50 설치보류", "90 반송"),
    _major("R3002", "해지사유", "01 단순변심", "02 제품불만", "03 서비스불만", "04 경제적사유",
           "05 이사", "06 사망", "07 중복계약", "08 건강문제", "09 장기연체", "99 기타"),
    _major("R3003", "이전유형", "01 동일건물", "02 시내이전", "03 시외이전", "04 도서지역",
           "05 해외이전"),
    _major("R3004", "해지유형", "01 청약철회", "02 중도해지", "03 만기해지", "04 강제해지"),
    _major("R4001", "예약상태", "10 예약", "20 확정", "30 방문완료", "40 노쇼", "90 취소"),
    _major("R4002", "만족도", "1 매우불만", "2 불만", "3 보통", "4 만족", "5 매우만족"),
    _major("R5001", "홈케어유형", "01 정기점검", "02 클리닝", "03 소모품교체", "04 기능점검",
           "05 펌웨어업데이트"),
    _major("R6001", "상품유형", "01 안마의자", "02 안마베드", "03 의료기기", "04 정수기",
           "05 공기청정기", "06 소모품", "07 액세서리"),
    _major("R6002", "메시지유형", "AT 알림톡", "FT 친구톡", "SMS 단문", "LMS 장문",
           "MMS 멀티미디어"),
    _major("R6003", "프로모션유형", "01 렌탈료할인", "02 사은품증정", "03 렌탈료면제",
           "04 등록비면제", "05 제휴카드할인"),
    _major("R7001", "라운지유형", "01 직영점", "02 백화점", "03 아울렛", "04 대리점",
           "05 팝업스토어", "06 복합쇼핑몰"),
    _major("R7002", "방문목적", "01 제품체험", "02 구매상담", "03 A/S상담", "04 이벤트참여",
           "05 단순방문"),
    _major("R8001", "콜그룹유형", "01 인바운드", "02 아웃바운드", "03 해피콜", "04 채권관리",
           "05 A/S콜"),
)

MINOR_COUNT = sum(len(major.minors) for major in CODE_BOOK)

# ---------------------------------------------------------------------------------------------
# The tables

_NAME, _TEL, _ADDR, _MEMO = varchar(50), varchar(20), varchar(200), varchar(2000)
_ORDER_NO, _CUST_NO, _GOODS_CD, _USER_ID = varchar(20), varchar(10), char(10), varchar(20)
_YMD, _YN, _AMT, _RATE = char(8), char(1), numeric(15, 2), numeric(5, 2)

_ORDER = "R_ORDER_CONTRACT.ORDER_NO"
_CUST = "V_CUSTOMER.CUST_NO"
_GOODS = "R_GOODS.GOODS_CD"
_USER = "V_ERP_USER.USER_ID"
_LOUNGE = "V_SALES_LOUNGE.LOUNGE_CD"
_MONEY = (0, 300000, 100)
_PRICE = (19900, 199900, 100)

TABLES: dict[str, StandInTable] = {
    t.qualified_name: t
    for t in (
        StandInTable("RENTAL.R_ACQ_INTRO", 400, (
            Column("INTRO_SEQ", INTEGER, "serial", nullable=False),
            Column("INTRO_CUST_NO", _CUST_NO, "pick", _CUST, blank=0.3),
            Column("INTRO_NM", _NAME, "person_name"),
            Column("INTRO_HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.05),
            Column("TARGET_NM", _NAME, "person_name"),
            Column("TARGET_HAND_TEL_NO", _TEL, "phone", "mobile"),
            Column("ORDER_NO", _ORDER_NO, "pick", _ORDER, blank=0.5),
            Column("INTRO_DT", _YMD, "row_ymd", (0, 0)),
            Column("REWARD_AMT", _AMT, "amount", (0, 100000, 10000)),
            Column("REWARD_PAY_YN", _YN, "yn", 0.4),
            Column("REWARD_PAY_DT", _YMD, "row_ymd", (7, 40), blank=0.6),
            Column("REMARK", varchar(500), "memo", blank=0.6),
            *audit(),
        )),
        StandInTable("RENTAL.R_BIZ_MSG_TEMPLATE", 60, (
            Column("TEMPLATE_CD", varchar(20), "code_no", ("BFT", 5), nullable=False),
            Column("TEMPLATE_NM", varchar(100), "word", "message_title"),
            Column("MSG_TYPE_CD", varchar(5), "code", "R6002"),
            Column("MSG_CONTENT", varchar(4000), "word", "message_body"),
            Column("BUTTON_JSON", varchar(2000), "word", "button_json", blank=0.4),
            Column("SENDER_KEY", varchar(40), "digits", 20),
            Column("APPROVE_YN", _YN, "yn", 0.9),
            Column("USE_YN", _YN, "yn", 0.85),
            *audit(),
        )),
        StandInTable("RENTAL.R_CALL_GROUP", 25, (
            Column("CALL_GROUP_CD", char(5), "code_no", ("CG", 3), nullable=False),
            Column("CALL_GROUP_NM", varchar(100), "label", "call_group"),
            Column("CALL_GROUP_TYPE_CD", char(2), "code", "R8001"),
            Column("MNG_USER_ID", _USER_ID, "pick", _USER),
            Column("SORT_SEQ", SMALLINT, "serial"),
            Column("USE_YN", _YN, "yn", 0.9),
            *audit(),
        )),
        StandInTable("RENTAL.R_CONTRACT_CANCEL_RECEIPT", "medium", (
            Column("RECEIPT_NO", varchar(20), "doc_no", "CC", nullable=False),
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("RECEIPT_DT", _YMD, "row_ymd", (0, 0), nullable=False),
            Column("CANCEL_TYPE_CD", char(2), "code", "R3004"),
            Column("CANCEL_RSN_CD", char(2), "code", "R3002"),
            Column("CANCEL_RSN_DESC", varchar(1000), "memo", blank=0.4),
            Column("CANCEL_HOPE_DT", _YMD, "row_ymd", (1, 30)),
            Column("PENALTY_AMT", _AMT, "amount", (0, 1500000, 10)),
            Column("REFUND_AMT", _AMT, "amount", (0, 500000, 10)),
            Column("COLLECT_DT", _YMD, "row_ymd", (3, 30), blank=0.5),
            Column("PROC_STATUS_CD", char(2), "code", "R2002"),
            Column("PROC_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("BANK_CD", char(3), "code", "R1005", blank=0.6),
            Column("ACCT_NO", varchar(30), "digits", 13, blank=0.6),
            Column("ACCT_HOLDER_NM", _NAME, "person_name", blank=0.6),
            Column("REMARK", varchar(1000), "memo", blank=0.5),
            *audit(cursor=True),
        ), parent="RENTAL.R_ORDER_CONTRACT", per_parent=1),
        StandInTable("RENTAL.R_CONTRACT_MOVE_RECEIPT", "medium", (
            Column("RECEIPT_NO", varchar(20), "doc_no", "MV", nullable=False),
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("RECEIPT_DT", _YMD, "row_ymd", (0, 0), nullable=False),
            Column("MOVE_TYPE_CD", char(2), "code", "R3003"),
            Column("MOVE_HOPE_DT", _YMD, "row_ymd", (3, 45)),
            Column("OLD_ZIP_CD", char(6), "zip"),
            Column("OLD_ADDR1", _ADDR, "addr1"),
            Column("OLD_ADDR2", _ADDR, "addr2", blank=0.05),
            Column("NEW_ZIP_CD", char(6), "zip"),
            Column("NEW_ADDR1", _ADDR, "addr1"),
            Column("NEW_ADDR2", _ADDR, "addr2", blank=0.05),
            Column("MOVE_FEE_AMT", _AMT, "amount", (0, 150000, 1000)),
            Column("PROC_STATUS_CD", char(2), "code", "R2002"),
            Column("ENGINEER_USER_ID", _USER_ID, "pick", _USER, blank=0.3),
            Column("REMARK", varchar(1000), "memo", blank=0.5),
            *audit(),
        ), parent="RENTAL.R_ORDER_CONTRACT"),
        StandInTable("RENTAL.R_CRM_INFO", "medium", (
            Column("ZIP_SEQ", BIGINT, "serial", nullable=False),
            Column("ZIP_CD", char(6), "zip"),
            Column("REGION_CD", char(2), "code", "C1004"),
            Column("ADDR1", _ADDR, "addr1"),
            Column("HOUSEHOLD_CNT", INTEGER, "integer", (50, 20000)),
            Column("APT_YN", _YN, "yn", 0.6),
            Column("AVG_INCOME_AMT", _AMT, "amount", (2000000, 12000000, 1000)),
            Column("CUST_CNT", INTEGER, "integer", (0, 3000)),
            Column("RENTAL_CNT", INTEGER, "integer", (0, 1500)),
            Column("PENETRATION_RATE", numeric(7, 4), "amount", (0, 30, 0.0001)),
            Column("MNG_LOUNGE_CD", varchar(10), "pick", _LOUNGE, blank=0.2),
            Column("MNG_USER_ID", _USER_ID, "pick", _USER, blank=0.3),
            Column("REMARK", varchar(500), "memo", blank=0.8),
            *audit(),
        )),
        StandInTable("RENTAL.R_EXHIBITION_VISIT_HISTORY", "medium", (
            Column("VISIT_SEQ", BIGINT, "serial", nullable=False),
            Column("LOUNGE_CD", varchar(10), "ref", _LOUNGE, nullable=False),
            Column("VISIT_DT", _YMD, "row_ymd", (0, 0), nullable=False),
            Column("VISIT_DTTM", DATETIME, "row_time", (0, 0)),
            Column("VISITOR_NM", _NAME, "person_name", blank=0.1),
            Column("VISITOR_HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.2),
            Column("VISITOR_CNT", SMALLINT, "integer", (1, 4)),
            Column("RESERVATION_NO", varchar(20), "pick", "R_EXPERIENCE_RESERVATION.RESERVATION_NO",
                   blank=0.6),
            Column("CUST_NO", _CUST_NO, "pick", _CUST, blank=0.6),
            Column("CONSULT_USER_ID", _USER_ID, "pick", _USER),
            Column("VISIT_PURPOSE_CD", char(2), "code", "R7002"),
            Column("INTEREST_GOODS_CD", _GOODS_CD, "pick", _GOODS, blank=0.3),
            Column("EXPERIENCE_MIN", SMALLINT, "integer", (5, 90)),
            Column("PURCHASE_YN", _YN, "yn", 0.2),
            Column("ORDER_NO", _ORDER_NO, "pick", _ORDER, blank=0.8),
            Column("VISIT_MEMO", varchar(1000), "memo", blank=0.5),
            *audit(),
        )),
        StandInTable("RENTAL.R_EXPERIENCE_RESERVATION", "medium", (
            Column("RESERVATION_NO", varchar(20), "doc_no", "EX", nullable=False),
            Column("LOUNGE_CD", varchar(10), "ref", _LOUNGE, nullable=False),
            Column("RSV_NM", _NAME, "person_name", nullable=False),
            Column("RSV_HAND_TEL_NO", _TEL, "phone", "mobile", nullable=False),
            Column("RSV_TEL_NO", _TEL, "phone", "home", blank=0.7),
            Column("RSV_EMAIL", varchar(100), "email", blank=0.5),
            Column("RSV_DT", _YMD, "row_ymd", (0, 14)),
            Column("RSV_TIME", char(4), "word", ("1000", "1100", "1300", "1400", "1500", "1600",
                                                 "1700", "1900")),
            Column("PERSON_CNT", SMALLINT, "integer", (1, 4)),
            Column("RSV_STATUS_CD", char(2), "code", "R4001"),
            Column("INFLOW_PATH_CD", char(2), "code", "R1003"),
            Column("INTEREST_GOODS_CD", _GOODS_CD, "pick", _GOODS, blank=0.4),
            Column("PRIVACY_AGREE_YN", _YN, "yn", 0.98),
            Column("MARKETING_AGREE_YN", _YN, "yn", 0.4),
            Column("CUST_NO", _CUST_NO, "pick", _CUST, blank=0.7),
            Column("RSV_MEMO", varchar(1000), "memo", blank=0.5),
            *audit(),
        )),
        StandInTable("RENTAL.R_GOODS", 150, (
            Column("GOODS_CD", _GOODS_CD, "code_no", ("BF", 6), nullable=False),
            Column("GOODS_NM", varchar(100), "label", "goods", nullable=False),
            Column("GOODS_TYPE_CD", char(2), "code", "R6001"),
            Column("ITEM_GROUP_CD", varchar(10), "ref", "B_ITEM_GROUP.ITEM_GROUP_CD"),
            Column("MODEL_NM", varchar(50), "word", "model"),
            Column("COLOR_NM", varchar(30), "word", "color"),
            Column("RENTAL_AMT", _AMT, "amount", _PRICE),
            Column("SALE_AMT", _AMT, "amount", (990000, 9900000, 10000)),
            Column("COST_AMT", _AMT, "amount", (300000, 4000000, 0.01)),
            Column("RELEASE_DT", _YMD, "ymd", ("20150101", "20231231")),
            Column("DISCONTINUE_YN", _YN, "yn", 0.2),
            Column("WEIGHT_KG", numeric(7, 2), "amount", (5, 120, 0.1)),
            Column("WARRANTY_MONTH", SMALLINT, "word", (12, 24, 36, 60)),
            Column("GOODS_DESC", varchar(4000), "memo", blank=0.3),
            Column("USE_YN", _YN, "yn", 0.9),
            *audit(),
        )),
        StandInTable("RENTAL.R_INSTALL_FEE", 300, (
            Column("GOODS_CD", _GOODS_CD, "ref", _GOODS, nullable=False),
            Column("APPLY_START_DT", _YMD, "child_value", ("20230101", "20240101"), nullable=False),
            Column("APPLY_END_DT", _YMD, "child_value", ("20231231", "99991231")),
            Column("INST_FEE_AMT", _AMT, "amount", (0, 150000, 1000)),
            Column("STAIR_FEE_AMT", _AMT, "amount", (0, 50000, 1000)),
            Column("LADDER_FEE_AMT", _AMT, "amount", (0, 250000, 10000)),
            Column("REMOTE_AREA_FEE_AMT", _AMT, "amount", (0, 100000, 5000)),
            Column("REMARK", varchar(500), "memo", blank=0.7),
            *audit(),
        ), parent="RENTAL.R_GOODS", per_parent=2),
        StandInTable("RENTAL.R_ORDER_CONTRACT", "large", (
            Column("ORDER_NO", _ORDER_NO, "order_no", nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("CONT_DT", _YMD, "row_ymd", (0, 0), nullable=False),
            Column("ORDER_DT", _YMD, "row_ymd", (0, 0)),
            Column("CONT_TYPE_CD", char(2), "code", "R1002"),
            Column("ORDER_STATUS_CD", char(4), "code", "R1001"),
            Column("SALES_CHNL_CD", char(2), "code", "R1003"),
            Column("GOODS_CD", _GOODS_CD, "ref", _GOODS, nullable=False),
            Column("QTY", SMALLINT, "integer", (1, 2)),
            Column("CONT_PERIOD_CD", char(2), "code", "R1007"),
            Column("RENTAL_AMT", _AMT, "amount", _PRICE),
            Column("DISCOUNT_AMT", _AMT, "amount", (0, 30000, 100)),
            Column("DISCOUNT_RATE", _RATE, "amount", (0, 30, 0.01)),
            Column("REG_FEE_AMT", _AMT, "amount", (0, 100000, 10000)),
            Column("SALE_AMT", _AMT, "amount", (990000, 9900000, 1000)),
            Column("VAT_AMT", _AMT, "amount", (0, 900000, 0.01)),
            Column("DEPOSIT_AMT", _AMT, "amount", (0, 500000, 10000)),
            Column("FREE_MONTH_CNT", SMALLINT, "integer", (0, 3)),
            Column("PROMOTION_CD", varchar(10), "ref", "R_PROMOTION.PROMOTION_CD", blank=0.6),
            Column("GIFT_NM", varchar(100), "word", "gift", blank=0.5),
            Column("PAY_METHOD_CD", varchar(10), "code", "R1004"),
            Column("BANK_CD", char(3), "code", "R1005", blank=0.4),
            Column("ACCT_NO", varchar(30), "digits", 13, blank=0.4),
            Column("ACCT_HOLDER_NM", _NAME, "person_name", blank=0.4),
            Column("CARD_CO_CD", char(2), "code", "R1006", blank=0.6),
            Column("CARD_NO", varchar(30), "digits", 16, blank=0.6),
            Column("PAY_DAY", char(2), "word", ("05", "10", "15", "20", "25")),
            Column("FIRST_PAY_DT", _YMD, "row_ymd", (20, 45)),
            Column("CREDIT_GRADE", SMALLINT, "integer", (1, 10), blank=0.1),
            Column("CREDIT_CHK_DT", _YMD, "row_ymd", (0, 1), blank=0.1),
            Column("INST_REQ_DT", _YMD, "row_ymd", (1, 10)),
            Column("INST_DT", _YMD, "row_ymd", (2, 14), blank=0.2),
            Column("RENTAL_START_DT", _YMD, "row_ymd", (2, 14), blank=0.2),
            Column("END_DT", _YMD, "row_ymd", (365, 1830), blank=0.2),
            Column("INST_ZIP_CD", char(6), "zip"),
            Column("INST_ADDR1", _ADDR, "addr1"),
            Column("INST_ADDR2", _ADDR, "addr2", blank=0.05),
            Column("RCV_NM", _NAME, "person_name"),
            Column("RCV_TEL_NO", _TEL, "phone", "home", blank=0.6),
            Column("RCV_HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.02),
            Column("SALES_USER_ID", _USER_ID, "ref", _USER),
            Column("MANAGER_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("LOUNGE_CD", varchar(10), "ref", _LOUNGE, blank=0.4),
            Column("SALES_GRP", varchar(4), "ref", "B_SALES_GRP.SALES_GRP"),
            Column("SALES_ORG", varchar(4), "ref", "B_SALES_GRP.SALES_ORG"),
            Column("ITEM_GROUP_CD", varchar(10), "pick", "B_ITEM_GROUP.ITEM_GROUP_CD"),
            Column("CANCEL_DT", _YMD, "row_ymd", (0, 30), blank=0.9),
            Column("CANCEL_RSN_CD", char(2), "code", "R3002", blank=0.9),
            Column("INST_REGION_CD", char(2), "code", "C1004"),
            Column("MNG_CENTER_CD", varchar(10), "code", "R2005"),
            Column("APPROVAL_NO", varchar(20), "digits", 8, blank=0.6),
            Column("OWNERSHIP_TRANS_YN", _YN, "yn", 0.05),
            Column("OWNERSHIP_TRANS_DT", _YMD, "row_ymd", (365, 1830), blank=0.95),
            Column("SIGN_YN", _YN, "yn", 0.95),
            Column("E_CONT_YN", _YN, "yn", 0.7),
            Column("E_CONT_DOC_ID", UUID, "uuid", blank=0.3),
            Column("HAPPY_CALL_YN", _YN, "yn", 0.8),
            Column("HAPPY_CALL_DT", _YMD, "row_ymd", (1, 5), blank=0.3),
            Column("TAX_INVOICE_YN", _YN, "yn", 0.05),
            Column("CORP_YN", _YN, "yn", 0.03),
            Column("EMP_SALE_YN", _YN, "yn", 0.02),
            Column("ORIGIN_ORDER_NO", _ORDER_NO, "pick", _ORDER, blank=0.95),
            Column("HOMESHOP_ORDER_NO", varchar(30), "digits", 12, blank=0.8),
            Column("SERIAL_NO", varchar(30), "digits", 12, blank=0.2),
            Column("PENALTY_AMT", _AMT, "amount", _MONEY, blank=0.8),
            Column("UNPAID_AMT", _AMT, "amount", _MONEY),
            Column("TOT_PAID_AMT", _AMT, "amount", (0, 3000000, 10)),
            Column("PAID_CNT", SMALLINT, "integer", (0, 3)),
            Column("OVERDUE_CNT", SMALLINT, "integer", (0, 2)),
            Column("COMMISSION_AMT", _AMT, "amount", (0, 500000, 0.01)),
            Column("CONT_VER", SMALLINT, "integer", (1, 3)),
            Column("CONT_RATE", numeric(9, 4), "amount", (0, 5, 0.0001)),
            Column("REMARK", _MEMO, "memo", blank=0.5),
            Column("DELIVERY_MEMO", varchar(500), "memo", blank=0.6),
            Column("ORDER_MEMO", varchar(1000), "memo", blank=0.7),
            Column("CRM_FLAG", BIT, "flag", 0.3),
            Column("RECONTRACT_YN", _YN, "yn", 0.1),
            Column("DORMANT_YN", _YN, "yn", 0.02),
            Column("USE_YN", _YN, "yn", 0.99),
            *audit(cursor=True),
        ), parent="RENTAL.V_CUSTOMER"),
        StandInTable("RENTAL.R_ORDER_CONTRACT_ADD", "large", (
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("MEMBERSHIP_NO", varchar(20), "digits", 12, blank=0.6),
            Column("MEMBERSHIP_GRADE_CD", varchar(10), "code", "C1002", blank=0.5),
            Column("POINT_AMT", _AMT, "amount", (0, 200000, 10)),
            Column("USE_POINT_AMT", _AMT, "amount", (0, 50000, 10), blank=0.5),
            Column("COUPON_NO", varchar(30), "digits", 16, blank=0.8),
            Column("COUPON_AMT", _AMT, "amount", (0, 100000, 1000), blank=0.8),
            Column("GIFT_NM", varchar(100), "word", "gift", blank=0.5),
            Column("GIFT_SEND_YN", _YN, "yn", 0.5),
            Column("GIFT_SEND_DT", _YMD, "row_ymd", (1, 14), blank=0.5),
            Column("REFERRER_CUST_NO", _CUST_NO, "pick", _CUST, blank=0.85),
            Column("INFLOW_PATH_CD", char(2), "code", "R1003"),
            Column("AD_MEDIA_NM", varchar(100), "word", "media", blank=0.4),
            Column("UTM_SOURCE", varchar(100), "word", "utm_source", blank=0.5),
            Column("UTM_CAMPAIGN", varchar(200), "word", "utm_campaign", blank=0.6),
            Column("BROADCAST_DT", _YMD, "row_ymd", (-3, 0), blank=0.8),
            Column("CONSULT_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("CALL_GROUP_CD", char(5), "ref", "R_CALL_GROUP.CALL_GROUP_CD", blank=0.3),
            Column("ADD_GOODS_CD", _GOODS_CD, "pick", _GOODS, blank=0.8),
            Column("ADD_GOODS_QTY", SMALLINT, "integer", (0, 3)),
            Column("ADD_GOODS_AMT", _AMT, "amount", (0, 300000, 100), blank=0.8),
            Column("COLOR_NM", varchar(30), "word", "color"),
            Column("INST_FLOOR", SMALLINT, "integer", (-2, 35)),
            Column("ELEVATOR_YN", _YN, "yn", 0.7),
            Column("LADDER_TRUCK_YN", _YN, "yn", 0.05),
            Column("STAIR_FEE_AMT", _AMT, "amount", (0, 50000, 1000)),
            Column("INST_FEE_AMT", _AMT, "amount", (0, 150000, 1000)),
            Column("DISPOSAL_YN", _YN, "yn", 0.1),
            Column("OLD_PRODUCT_NM", varchar(100), "word", "model", blank=0.9),
            Column("PET_YN", _YN, "yn", 0.2),
            Column("INST_LOCATION_NM", varchar(50), "word", "room", blank=0.2),
            Column("HOPE_INST_DT", _YMD, "row_ymd", (1, 10)),
            Column("HOPE_INST_TIME", varchar(10), "word", ("오전", "오후", "저녁", "무관")),
            Column("INST_MEMO", varchar(1000), "memo", blank=0.5),
            Column("CS_MEMO", varchar(1000), "memo", blank=0.6),
            Column("ENG_NM", varchar(100), "word", "english_name", blank=0.95),
            Column("FOREIGNER_YN", _YN, "yn", 0.01),
            Column("GUARDIAN_NM", _NAME, "person_name", blank=0.97),
            Column("GUARDIAN_TEL_NO", _TEL, "phone", "mobile", blank=0.97),
            Column("TAX_EMAIL", varchar(100), "email", blank=0.9),
            Column("BIZ_REG_NO", varchar(12), "digits", 10, blank=0.95),
            Column("CASH_RECEIPT_NO", varchar(20), "digits", 11, blank=0.8),
            Column("AUTO_TRANS_AGREE_YN", _YN, "yn", 0.7),
            Column("AUTO_TRANS_AGREE_DT", _YMD, "row_ymd", (0, 2), blank=0.3),
            Column("RECORDING_ID", varchar(50), "digits", 16, blank=0.6),
            Column("DOC_IMG_CNT", SMALLINT, "integer", (0, 5)),
            Column("PAPERLESS_YN", _YN, "yn", 0.7),
            Column("SMS_SEND_YN", _YN, "yn", 0.9),
            Column("KAKAO_SEND_YN", _YN, "yn", 0.8),
            Column("LAST_SEND_DTTM", DATETIME, "row_time", (0, 4320), blank=0.3),
            Column("SETTLE_YN", _YN, "yn", 0.6),
            Column("SETTLE_DT", _YMD, "row_ymd", (10, 40), blank=0.4),
            Column("COMMISSION_RATE", _RATE, "amount", (0, 15, 0.01)),
            Column("INCENTIVE_AMT", _AMT, "amount", (0, 200000, 0.01)),
            Column("CHANGE_CNT", SMALLINT, "integer", (0, 4)),
            Column("SURVEY_SCORE", numeric(3, 1), "amount", (0, 10, 0.5), blank=0.6),
            Column("CRM_FLAG", BIT, "flag", 0.2),
            Column("REMARK", _MEMO, "memo", blank=0.6),
            Column("USE_YN", _YN, "yn", 0.99),
            *audit(cursor=True),
        ), parent="RENTAL.R_ORDER_CONTRACT", per_parent=1),
        StandInTable("RENTAL.R_ORDER_CUST_INFO", "medium", (
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("RELATION_CD", char(2), "code", "C1008"),
            Column("CUST_NM", _NAME, "person_name", nullable=False),
            Column("BIRTH_DT", _YMD, "ymd", ("19400101", "20051231"), blank=0.1),
            Column("SEX_CD", char(1), "code", "C1001", blank=0.05),
            Column("TEL_NO", _TEL, "phone", "home", blank=0.5),
            Column("HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.02),
            Column("EMAIL", varchar(100), "email", blank=0.3),
            Column("ZIP_CD", char(6), "zip"),
            Column("ADDR1", _ADDR, "addr1"),
            Column("ADDR2", _ADDR, "addr2", blank=0.05),
            Column("CONTRACTOR_YN", _YN, "yn", 0.85),
            Column("REMARK", varchar(1000), "memo", blank=0.7),
            *audit(cursor=True),
        ), parent="RENTAL.R_ORDER_CONTRACT", per_parent=1),
        StandInTable("RENTAL.R_PROD_SYMPTOM_HDR", 8, (
            Column("SYMPTOM_BIG_CD", char(2), "code_no", ("", 2), nullable=False),
            Column("SYMPTOM_BIG_NM", varchar(100), "label", "symptom_big", nullable=False),
            Column("SORT_SEQ", SMALLINT, "serial"),
            Column("USE_YN", _YN, "yn", 0.95),
            *audit(),
        )),
        StandInTable("RENTAL.R_PROD_SYMPTOM_DTL", 40, (
            Column("SYMPTOM_BIG_CD", char(2), "ref", "R_PROD_SYMPTOM_HDR.SYMPTOM_BIG_CD",
                   nullable=False),
            Column("SYMPTOM_MID_CD", char(3), "child_no", 3, nullable=False),
            Column("SYMPTOM_MID_NM", varchar(100), "label", "symptom_mid", nullable=False),
            Column("SORT_SEQ", SMALLINT, "child_no"),
            Column("USE_YN", _YN, "yn", 0.95),
            *audit(),
        ), parent="RENTAL.R_PROD_SYMPTOM_HDR", per_parent=5),
        StandInTable("RENTAL.R_PROD_SYMPTOM_SML", 160, (
            Column("SYMPTOM_BIG_CD", char(2), "ref", "R_PROD_SYMPTOM_HDR.SYMPTOM_BIG_CD",
                   nullable=False),
            Column("SYMPTOM_MID_CD", char(3), "ref", "R_PROD_SYMPTOM_DTL.SYMPTOM_MID_CD",
                   nullable=False),
            Column("SYMPTOM_SML_CD", char(3), "child_no", 3, nullable=False),
            Column("SYMPTOM_SML_NM", varchar(100), "label", "symptom_sml", nullable=False),
            Column("SORT_SEQ", SMALLINT, "child_no"),
            Column("USE_YN", _YN, "yn", 0.95),
            *audit(),
        ), parent="RENTAL.R_PROD_SYMPTOM_DTL", per_parent=4),
        StandInTable("RENTAL.R_PROMOTION", 80, (
            Column("PROMOTION_CD", varchar(10), "code_no", ("PR", 5), nullable=False),
            Column("PROMOTION_NM", varchar(200), "word", "promotion"),
            Column("PROMO_TYPE_CD", char(2), "code", "R6003"),
            Column("START_DT", _YMD, "ymd", ("20230101", "20231231")),
            Column("END_DT", _YMD, "ymd", ("20240101", "20251231"), blank=0.1),
            Column("DISCOUNT_RATE", _RATE, "amount", (0, 30, 0.5)),
            Column("DISCOUNT_AMT", _AMT, "amount", (0, 50000, 1000)),
            Column("FREE_MONTH_CNT", SMALLINT, "integer", (0, 3)),
            Column("TARGET_GOODS_CD", _GOODS_CD, "pick", _GOODS, blank=0.5),
            Column("REMARK", varchar(1000), "memo", blank=0.5),
            Column("USE_YN", _YN, "yn", 0.8),
            *audit(),
        )),
        StandInTable("RENTAL.R_SERVICE_EVALUATION", "medium", (
            Column("EVAL_SEQ", BIGINT, "serial", nullable=False),
            Column("RECEIPT_NO", varchar(20), "ref", "R_SERVICE_RECEIPT.RECEIPT_NO",
                   nullable=False),
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER),
            Column("CUST_NO", _CUST_NO, "ref", _CUST),
            Column("EVAL_DT", _YMD, "row_ymd", (0, 3)),
            Column("EVAL_SCORE_CD", char(1), "code", "R4002"),
            Column("KINDNESS_SCORE", SMALLINT, "integer", (1, 5)),
            Column("TIME_SCORE", SMALLINT, "integer", (1, 5)),
            Column("SKILL_SCORE", SMALLINT, "integer", (1, 5)),
            Column("RECOMMEND_YN", _YN, "yn", 0.7),
            Column("EVAL_CHNL_CD", char(2), "code", "R2004"),
            Column("EVAL_COMMENT", varchar(2000), "memo", blank=0.5),
            *audit(),
        ), parent="RENTAL.R_SERVICE_RECEIPT", per_parent=1),
        StandInTable("RENTAL.R_SERVICE_RECEIPT", "large", (
            Column("RECEIPT_NO", varchar(20), "doc_no", "SR", nullable=False),
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("GOODS_CD", _GOODS_CD, "ref", "R_ORDER_CONTRACT.GOODS_CD"),
            Column("RECEIPT_DT", _YMD, "row_ymd", (0, 0), nullable=False),
            Column("RECEIPT_DTTM", DATETIME, "row_time", (0, 0)),
            Column("RECEIPT_TYPE_CD", char(2), "code", "R2001"),
            Column("RECEIPT_PATH_CD", char(2), "code", "R2004"),
            Column("SVC_STATUS_CD", char(2), "code", "R2002"),
            Column("PRIORITY_CD", char(1), "code", "R2006"),
            Column("SYMPTOM_BIG_CD", char(2), "ref", "R_PROD_SYMPTOM_SML.SYMPTOM_BIG_CD"),
            Column("SYMPTOM_MID_CD", char(3), "ref", "R_PROD_SYMPTOM_SML.SYMPTOM_MID_CD"),
            Column("SYMPTOM_SML_CD", char(3), "ref", "R_PROD_SYMPTOM_SML.SYMPTOM_SML_CD"),
            Column("SYMPTOM_DESC", _MEMO, "memo", blank=0.2),
            Column("ERROR_CD", varchar(10), "word", "error_code", blank=0.6),
            Column("CUST_NM", _NAME, "person_name"),
            Column("TEL_NO", varchar(100), "enc_phone", "home", blank=0.5),
            Column("HAND_TEL_NO", varchar(100), "enc_phone", "mobile", blank=0.03),
            Column("ZIP_CD", char(6), "zip"),
            Column("ADDR1", _ADDR, "addr1"),
            Column("ADDR2", _ADDR, "addr2", blank=0.05),
            Column("VISIT_HOPE_DT", _YMD, "row_ymd", (1, 7)),
            Column("VISIT_HOPE_TIME", char(4), "word", ("0900", "1000", "1100", "1300", "1400",
                                                        "1500", "1600", "1700")),
            Column("VISIT_PLAN_DT", _YMD, "row_ymd", (1, 10), blank=0.2),
            Column("VISIT_DT", _YMD, "row_ymd", (1, 12), blank=0.35),
            Column("VISIT_START_DTTM", DATETIME, "row_time", (600, 14400), blank=0.35),
            Column("VISIT_END_DTTM", DATETIME, "row_time", (14400, 17280), blank=0.35),
            Column("SVC_CENTER_CD", varchar(10), "code", "R2005"),
            Column("REGION_CD", char(2), "code", "C1004"),
            Column("PROMISE_DTTM", DATETIME, "row_time", (60, 10080), blank=0.3),
            Column("ENGINEER_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("RECEIPT_USER_ID", _USER_ID, "pick", _USER),
            Column("ASSIGN_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("ASSIGN_DTTM", DATETIME, "row_time", (5, 1440), blank=0.2),
            Column("COMPLETE_DTTM", DATETIME, "row_time", (1440, 20160), blank=0.35),
            Column("PROC_RESULT_CD", char(2), "code", "R2003", blank=0.35),
            Column("PROC_DESC", _MEMO, "memo", blank=0.4),
            Column("CUST_REQUEST", varchar(1000), "memo", blank=0.5),
            Column("ENGINEER_MEMO", _MEMO, "memo", blank=0.5),
            Column("DELAY_RSN", varchar(500), "memo", blank=0.9),
            Column("REPLACE_GOODS_CD", _GOODS_CD, "pick", _GOODS, blank=0.95),
            Column("PART_CD", varchar(20), "digits", 8, blank=0.7),
            Column("PART_NM", varchar(100), "word", "part", blank=0.7),
            Column("PART_QTY", SMALLINT, "integer", (0, 3)),
            Column("PART_AMT", _AMT, "amount", (0, 250000, 100), blank=0.7),
            Column("SVC_AMT", _AMT, "amount", (0, 80000, 1000)),
            Column("TRAVEL_AMT", _AMT, "amount", (0, 30000, 5000)),
            Column("TOT_AMT", _AMT, "amount", (0, 400000, 0.01)),
            Column("VAT_AMT", _AMT, "amount", (0, 40000, 0.01)),
            Column("PAY_YN", _YN, "yn", 0.3),
            Column("PAY_METHOD_CD", varchar(10), "code", "R1004", blank=0.7),
            Column("FREE_YN", _YN, "yn", 0.7),
            Column("WARRANTY_YN", _YN, "yn", 0.8),
            Column("WARRANTY_END_DT", _YMD, "row_ymd", (30, 1095), blank=0.1),
            Column("PRODUCT_USE_MONTH", SMALLINT, "integer", (0, 72)),
            Column("SERIAL_NO", varchar(30), "digits", 12, blank=0.1),
            Column("FIRMWARE_VER", varchar(20), "word", "firmware", blank=0.5),
            Column("REVISIT_YN", _YN, "yn", 0.1),
            Column("PARENT_RECEIPT_NO", varchar(20), "pick", "R_SERVICE_RECEIPT.RECEIPT_NO",
                   blank=0.9),
            Column("CANCEL_YN", _YN, "yn", 0.05),
            Column("CANCEL_RSN", varchar(500), "memo", blank=0.95),
            Column("CALL_ID", varchar(50), "digits", 14, blank=0.3),
            Column("RECORD_FILE_NM", varchar(200), "word", "record_file", blank=0.5),
            Column("HAPPY_CALL_YN", _YN, "yn", 0.6),
            Column("HAPPY_CALL_DT", _YMD, "row_ymd", (2, 14), blank=0.4),
            Column("CUST_SIGN_IMG", BYTEA, "image", blank=0.7),
            Column("SIGN_DTTM", DATETIME, "row_time", (1440, 20160), blank=0.7),
            Column("SMS_SEND_YN", _YN, "yn", 0.9),
            Column("KAKAO_SEND_YN", _YN, "yn", 0.7),
            Column("SURVEY_SEND_YN", _YN, "yn", 0.5),
            Column("CLAIM_YN", _YN, "yn", 0.03),
            Column("CUST_SATISFY_CD", char(1), "code", "R4002", blank=0.6),
            Column("RECALL_YN", _YN, "yn", 0.02),
            Column("REMOTE_AREA_YN", _YN, "yn", 0.05),
            Column("VIP_YN", _YN, "yn", 0.05),
            Column("REPEAT_CNT", SMALLINT, "integer", (0, 4)),
            Column("DISTANCE_KM", numeric(7, 2), "amount", (0, 150, 0.01)),
            Column("LATITUDE", FLOAT, "real", (33.2, 38.5), blank=0.3),
            Column("LONGITUDE", FLOAT, "real", (126.1, 129.5), blank=0.3),
            Column("CRM_FLAG", BIT, "flag", 0.1),
            Column("REMARK", _MEMO, "memo", blank=0.6),
            Column("USE_YN", _YN, "yn", 0.99),
            *audit(cursor=True),
        ), parent="RENTAL.R_ORDER_CONTRACT"),
        StandInTable("RENTAL.R_SHIPPING_EVALUATION", "medium", (
            Column("EVAL_SEQ", BIGINT, "serial", nullable=False),
            Column("SHIPPING_NO", varchar(20), "ref", "R_SHIPPING_INFO.SHIPPING_NO",
                   nullable=False),
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER),
            Column("CUST_NO", _CUST_NO, "ref", _CUST),
            Column("EVAL_DT", _YMD, "row_ymd", (0, 3)),
            Column("EVAL_SCORE_CD", char(1), "code", "R4002"),
            Column("KINDNESS_SCORE", SMALLINT, "integer", (1, 5)),
            Column("PUNCTUALITY_SCORE", SMALLINT, "integer", (1, 5)),
            Column("INSTALL_SCORE", SMALLINT, "integer", (1, 5)),
            Column("EVAL_COMMENT", varchar(2000), "memo", blank=0.5),
            *audit(),
        ), parent="RENTAL.R_SHIPPING_INFO", per_parent=1),
        StandInTable("RENTAL.R_SHIPPING_INFO", "medium", (
            Column("SHIPPING_NO", varchar(20), "doc_no", "SH", nullable=False),
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST, nullable=False),
            Column("GOODS_CD", _GOODS_CD, "ref", "R_ORDER_CONTRACT.GOODS_CD"),
            Column("QTY", SMALLINT, "integer", (1, 2)),
            Column("SHIP_STATUS_CD", char(2), "code", "R3001"),
            Column("SHIP_REQ_DT", _YMD, "row_ymd", (0, 3)),
            Column("SHIP_DT", _YMD, "row_ymd", (1, 5), blank=0.2),
            Column("INST_DT", _YMD, "row_ymd", (2, 10), blank=0.3),
            Column("RCV_NM", _NAME, "person_name"),
            Column("RCV_TEL_NO", _TEL, "phone", "home", blank=0.6),
            Column("RCV_HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.02),
            Column("ZIP_CD", char(6), "zip"),
            Column("ADDR1", _ADDR, "addr1"),
            Column("ADDR2", _ADDR, "addr2", blank=0.05),
            Column("DELIVERY_CENTER_CD", varchar(10), "code", "R2005"),
            Column("DELIVERY_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("INVOICE_NO", varchar(30), "digits", 12, blank=0.3),
            Column("DELIVERY_MEMO", varchar(1000), "memo", blank=0.5),
            *audit(cursor=True),
        ), parent="RENTAL.R_ORDER_CONTRACT", per_parent=1),
        StandInTable("RENTAL.R_TRANS_HOMEPAGE", 500, (
            Column("TRANS_SEQ", INTEGER, "serial", nullable=False),
            Column("MEMBER_UUID", UUID, "uuid", blank=0.4),
            Column("CUST_NM", _NAME, "person_name"),
            Column("HAND_TEL_NO", _TEL, "phone", "mobile"),
            Column("EMAIL", varchar(100), "email", blank=0.4),
            Column("INQUIRY_TYPE_CD", char(2), "code", "R2001"),
            Column("GOODS_CD", _GOODS_CD, "pick", _GOODS, blank=0.3),
            Column("INQUIRY_TITLE", varchar(200), "word", "inquiry_title"),
            Column("INQUIRY_CONTENT", varchar(4000), "memo"),
            Column("TRANS_YN", _YN, "yn", 0.8),
            Column("TRANS_DTTM", DATETIME, "row_time", (1, 120), blank=0.2),
            Column("INQUIRY_DATE", DATE, "row_ymd", (0, 0), nullable=False),
            *audit(),
        )),
        StandInTable("RENTAL.V_CUSTOMER", "large", (
            Column("CUST_NO", _CUST_NO, "cust_no", nullable=False),
            Column("CUST_NM", _NAME, "person_name", nullable=False),
            Column("CUST_TYPE_CD", char(2), "code", "C1003"),
            Column("SEX_CD", char(1), "code", "C1001", blank=0.05),
            Column("BIRTH_DT", _YMD, "ymd", ("19400101", "20051231"), blank=0.1),
            Column("SOLAR_LUNAR_CD", char(1), "code", "C1006", blank=0.3),
            Column("TEL_NO", _TEL, "phone", "home", blank=0.5),
            Column("HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.02),
            Column("EMAIL", varchar(100), "email", blank=0.3),
            Column("ZIP_CD", char(6), "zip"),
            Column("ADDR1", _ADDR, "addr1"),
            Column("ADDR2", _ADDR, "addr2", blank=0.05),
            Column("REGION_CD", char(2), "code", "C1004"),
            Column("CUST_GRADE_CD", varchar(10), "code", "C1002"),
            Column("JOB_CD", char(3), "code", "C1005", blank=0.3),
            Column("BIZ_REG_NO", varchar(12), "digits", 10, blank=0.9),
            Column("CORP_NM", varchar(100), "word", "company", blank=0.9),
            Column("MEMBER_UUID", UUID, "uuid", blank=0.2),
            Column("MARKETING_AGREE_YN", _YN, "yn", 0.4),
            Column("SMS_AGREE_YN", _YN, "yn", 0.6),
            Column("EMAIL_AGREE_YN", _YN, "yn", 0.3),
            Column("DM_AGREE_YN", _YN, "yn", 0.2),
            Column("PRIVACY_AGREE_DT", _YMD, "row_ymd", (0, 0), blank=0.05),
            Column("JOIN_DT", _YMD, "row_ymd", (0, 0), nullable=False),
            Column("JOIN_CHNL_CD", char(2), "code", "R1003"),
            Column("FIRST_ORDER_DT", _YMD, "row_ymd", (0, 3), blank=0.3),
            Column("LAST_ORDER_DT", _YMD, "row_ymd", (0, 6), blank=0.3),
            Column("ORDER_CNT", SMALLINT, "integer", (0, 5)),
            Column("RENTAL_CNT", SMALLINT, "integer", (0, 3)),
            Column("TOT_RENTAL_AMT", _AMT, "amount", (0, 9000000, 100)),
            Column("UNPAID_AMT", _AMT, "amount", _MONEY),
            Column("CUST_STATUS_CD", char(2), "code", "C1007"),
            Column("DORMANT_YN", _YN, "yn", 0.05),
            Column("WITHDRAW_DT", _YMD, "row_ymd", (0, 6), blank=0.95),
            Column("BLACK_LIST_YN", _YN, "yn", 0.01),
            Column("MNG_LOUNGE_CD", varchar(10), "ref", _LOUNGE, blank=0.3),
            Column("MNG_USER_ID", _USER_ID, "pick", _USER, blank=0.2),
            Column("REMARK", varchar(1000), "memo", blank=0.6),
            Column("USE_YN", _YN, "yn", 0.97),
            *audit(cursor=True),
        )),
        StandInTable("RENTAL.V_ERP_USER", 300, (
            Column("USER_ID", _USER_ID, "code_no", ("BF", 5), nullable=False),
            Column("USER_NM", _NAME, "person_name", nullable=False),
            Column("DEPT_NM", varchar(100), "word", "department"),
            Column("POSITION_NM", varchar(50), "word", "position"),
            Column("SALES_GRP", varchar(4), "ref", "B_SALES_GRP.SALES_GRP", blank=0.3),
            Column("SALES_ORG", varchar(4), "ref", "B_SALES_GRP.SALES_ORG"),
            Column("EMAIL", varchar(100), "email", blank=0.1),
            Column("HAND_TEL_NO", _TEL, "phone", "mobile", blank=0.1),
            Column("ENTER_DT", _YMD, "ymd", ("20080101", "20231231")),
            Column("RETIRE_DT", _YMD, "ymd", ("20180101", "20231231"), blank=0.9),
            Column("USE_YN", _YN, "yn", 0.9),
            *audit(),
        )),
        StandInTable("RENTAL.V_HOME_CARE", "medium", (
            Column("ORDER_NO", _ORDER_NO, "ref", _ORDER, nullable=False),
            Column("CARE_SEQ", SMALLINT, "child_no", nullable=False),
            Column("CUST_NO", _CUST_NO, "ref", _CUST),
            Column("CONT_DT", _YMD, "ref", "R_ORDER_CONTRACT.CONT_DT"),
            Column("GOODS_CD", _GOODS_CD, "ref", "R_ORDER_CONTRACT.GOODS_CD"),
            Column("CARE_TYPE_CD", char(2), "code", "R5001"),
            Column("CARE_PLAN_DT", _YMD, "row_ymd", (30, 400)),
            Column("CARE_DT", _YMD, "row_ymd", (30, 400), blank=0.5),
            Column("CARE_USER_ID", _USER_ID, "pick", _USER, blank=0.3),
            Column("CARE_STATUS_CD", char(2), "code", "R2002"),
            Column("CARE_RESULT", varchar(1000), "memo", blank=0.5),
            Column("NEXT_CARE_DT", _YMD, "row_ymd", (120, 500), blank=0.3),
            *audit(),
        ), parent="RENTAL.R_ORDER_CONTRACT", per_parent=3),
        StandInTable("RENTAL.V_SALES_LOUNGE", 120, (
            Column("LOUNGE_CD", varchar(10), "code_no", ("L", 4), nullable=False),
            Column("LOUNGE_NM", varchar(100), "label", "lounge", nullable=False),
            Column("LOUNGE_TYPE_CD", char(2), "code", "R7001"),
            Column("SALES_ORG", varchar(4), "ref", "B_SALE_ORG.SALES_ORG"),
            Column("ZIP_CD", char(6), "zip"),
            Column("ADDR1", _ADDR, "addr1"),
            Column("ADDR2", _ADDR, "addr2"),
            Column("TEL_NO", _TEL, "phone", "home"),
            Column("LATITUDE", FLOAT, "real", (33.2, 38.5)),
            Column("LONGITUDE", FLOAT, "real", (126.1, 129.5)),
            Column("OPEN_TIME", char(4), "word", ("1000", "1030", "1100")),
            Column("CLOSE_TIME", char(4), "word", ("1900", "2000", "2030", "2100")),
            Column("OPEN_DT", _YMD, "ymd", ("20150101", "20231231")),
            Column("CLOSE_YN", _YN, "yn", 0.05),
            Column("MNG_USER_ID", _USER_ID, "pick", _USER),
            Column("USE_YN", _YN, "yn", 0.95),
            *audit(),
        )),
        StandInTable("UNIERP5.B_ITEM_GROUP", 30, (
            Column("ITEM_GROUP_CD", varchar(10), "code_no", ("IG", 3), nullable=False),
            Column("ITEM_GROUP_NM", varchar(100), "label", "item_group", nullable=False),
            Column("ITEM_GROUP_LVL", SMALLINT, "integer", (1, 3)),
            Column("USE_YN", _YN, "yn", 0.9),
            *audit(),
        )),
        StandInTable("UNIERP5.B_MAJOR", len(CODE_BOOK), (
            Column("MAJOR_CD", varchar(5), "label", "major_cd", nullable=False),
            Column("MAJOR_NM", varchar(50), "label", "major_nm", nullable=False),
            Column("MINOR_LEN", SMALLINT, "label", "major_minor_len"),
            Column("TYPE", char(1), "word", ("S", "U")),
            *audit(),
        )),
        StandInTable("UNIERP5.B_MINOR", MINOR_COUNT, (
            Column("MAJOR_CD", varchar(5), "label", "minor_major_cd", nullable=False),
            Column("MINOR_CD", varchar(10), "label", "minor_cd", nullable=False),
            Column("MINOR_NM", varchar(50), "label", "minor_nm", nullable=False),
            Column("MINOR_TYPE", char(1), "word", ("S", "U")),
            Column("SORT_SEQ", SMALLINT, "label", "minor_seq"),
            Column("USE_YN", _YN, "yn", 0.97),
            *audit(),
        )),
        StandInTable("UNIERP5.B_SALES_GRP", 40, (
            Column("SALES_GRP", varchar(4), "code_no", ("G", 3), nullable=False),
            Column("SALES_GRP_NM", varchar(50), "label", "sales_grp", nullable=False),
            Column("SALES_ORG", varchar(4), "ref", "B_SALE_ORG.SALES_ORG"),
            Column("VALID_FROM_DT", _YMD, "ymd", ("20150101", "20231231")),
            Column("USE_YN", _YN, "yn", 0.9),
            *audit(),
        )),
        StandInTable("UNIERP5.B_SALE_ORG", 12, (
            Column("SALES_ORG", varchar(4), "code_no", ("S", 3), nullable=False),
            Column("SALES_ORG_NM", varchar(50), "label", "sales_org", nullable=False),
            Column("SALES_ORG_LVL", SMALLINT, "integer", (1, 3)),
            Column("USE_YN", _YN, "yn", 0.95),
            *audit(),
        )),
    )
}

CODE_COLUMNS: dict[tuple[str, str], str] = {
    (table.qualified_name, column.name): column.arg
    for table in TABLES.values()
    for column in table.columns
    if column.kind == "code"
}
"""(qualified table name, column name) -> the B_MAJOR.MAJOR_CD whose MINOR_CDs the column holds."""


def stand_in(name: str) -> StandInTable:
    """The stand-in table for a catalog name: ``RENTAL.R_ORDER_CONTRACT``, ``r_order_contract``."""
    return TABLES[load_catalog().by_name(name).qualified_name]


def table_columns(name: str) -> tuple[Column, ...]:
    """The columns of a catalog table (``RENTAL.R_ORDER_CONTRACT``), in table order."""
    return stand_in(name).columns


def sqlalchemy_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """The stand-in table in PostgreSQL: schema ``rental``/``unierp5``, lower case, catalog keys.

    Incremental tables also get an index on (cursor, keys), the order keyset pages are read in;
    without one every page would scan and sort the whole window.
    """
    table = stand_in(name)
    entry = table.catalog_entry
    indexes = []
    if entry.cursor_column:
        indexes.append(sa.Index(f"ix_{entry.name}_keyset", entry.cursor_column, *entry.key_columns))
    return sa.Table(
        entry.name,
        metadata if metadata is not None else sa.MetaData(),
        *(sa.Column(c.pg_name, c.type.sqlalchemy(), nullable=c.nullable) for c in table.columns),
        sa.PrimaryKeyConstraint(*entry.key_columns, name=f"pk_{entry.name}"),
        *indexes,
        schema=entry.source_schema,
    )


def _check() -> None:
    """Keep the declarations and the catalog in step; fail at import, naming the table."""
    catalog = load_catalog()
    declared = set(TABLES)
    listed = {t.qualified_name for t in catalog.tables}
    if declared != listed:
        raise ValueError(
            f"stand-in tables and catalog differ: only declared {sorted(declared - listed)}, "
            f"only in the catalog {sorted(listed - declared)}"
        )
    majors = {m.major_cd: m for m in CODE_BOOK}
    for table in TABLES.values():
        entry = table.catalog_entry
        names = [c.name for c in table.columns]
        where = table.qualified_name
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: a column name repeats")
        for column in table.columns:
            if not IDENTIFIER.match(column.name):
                raise ValueError(f"{where}.{column.name}: not a plain identifier")
            if column.kind in ("ref", "pick"):
                target_table, target_column = column.arg.split(".")
                stand_in(target_table).column(target_column)
            if column.kind == "code":
                longest = max(len(cd) for cd, _ in majors[column.arg].minors)
                if column.type.length is None or column.type.length < longest:
                    raise ValueError(f"{where}.{column.name}: too short for {column.arg} codes")
        for key in entry.keys:
            if key not in names or table.column(key).nullable:
                raise ValueError(f"{where}: key {key} must be a NOT NULL column")
        for audit_column in ("INSRT_DT", "UPDT_DT"):
            if audit_column not in names:
                raise ValueError(f"{where}: {audit_column} is missing")
        if entry.cursor and table.column(entry.cursor).nullable:
            raise ValueError(f"{where}: cursor {entry.cursor} must be NOT NULL")
        if table.parent is not None and table.parent not in TABLES:
            raise ValueError(f"{where}: unknown parent {table.parent}")


_check()
