"""Fill the stand-in legacy database with synthetic ERP data, fast and reproducibly.

``seed_legacy`` (re)creates the stand-in's tables and fills them inside PostgreSQL with one
``INSERT ... SELECT ... FROM generate_series`` per table; no row passes through Python, so two
million 83-column contracts take well under a minute.

Every value is a pure function of (seed, table, column, row number), made from PostgreSQL's
seeded ``hashint8extended``. That gives determinism without depending on evaluation order, and it
makes references consistent by construction: the CUST_NO of service receipt r is the CUST_NO of
the contract the receipt belongs to, because both are the same expression of the contract's row
number. Values that do not depend on the row's identity (names, phones, amounts, codes, memos)
are computed for a pool of at most 65,536 template rows and joined in, so the per-row work stays
small.

The data is as messy as the ERP's: order numbers under five prefixes, Korean names and addresses,
both '' and NULL in optional text, CHAR padding, trailing spaces, memos with quotes, tabs,
newlines and backslashes, and audit timestamps that pile up on nightly batch stamps in 1/300 s
steps like SQL Server DATETIME.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.schema import CreateSchema, CreateTable, DropTable

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.legacy_schema import (
    CODE_BOOK,
    TABLES,
    Column,
    StandInTable,
    sqlalchemy_table,
    stand_in,
)

log = logging.getLogger(__name__)

# The stand-in for RENTAL.DBO.FN_DEC, and the encryption the generator stores phones with.
CRYPTO_SCHEMA = "rental"
DECRYPT_FUNCTION = "fn_dec"
ENCRYPT_FUNCTION = "fn_enc"

ORDER_PREFIXES = ["02", "82", "HI", "K2", "ON"]
CUST_NO_BASE = 1_000_000_000

TICKS_PER_SECOND = 300  # SQL Server DATETIME counts 1/300 s: milliseconds end in 0, 3 or 7
TICKS_PER_MINUTE = 60 * TICKS_PER_SECOND
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
INSERT_BATCH_AT = 2 * 3600 * TICKS_PER_SECOND  # 02:00:00.000, the nightly load job
UPDATE_BATCH_AT = 4 * 3600 * TICKS_PER_SECOND + 30 * TICKS_PER_MINUTE  # 04:30:00.000
BATCH_INSERTED = 0.30  # share of rows inserted by the nightly job, all on its one stamp a day
NEVER_UPDATED = 0.45  # share of rows whose UPDT_DT equals INSRT_DT
BATCH_UPDATED = 0.20  # share updated by the next night's batch
TRAILING_SPACE = 0.03  # share of names and addresses typed with a trailing space

MEDIUM_MIN_ROWS = 40
POOL_ROWS = 1 << 16

# Columns whose values depend on which row they are in (keys, references, dates of the row's
# day) are computed per row; all others come from the template pool.
PER_ROW_KINDS = frozenset({
    "serial", "order_no", "doc_no", "cust_no", "code_no", "child_no", "child_value", "label",
    "ref", "pick", "insrt_dt", "updt_dt", "row_ymd", "row_time", "uuid",
})

_MODELS = [
    "팬텀", "팬텀 II", "팬텀 로보", "파라오", "파라오 S", "파라오 II", "레지나", "레지나 II",
    "람보르기니", "퀀텀", "에덴", "메디컬 팬텀", "하이키", "아제라", "엘리자벳", "더 파라오",
    "다빈치", "뉴 레지나", "아이로보", "프레지던트", "블랙라벨", "팬텀 메디컬케어", "라클라우드",
    "W정수기", "더블케어", "에스테틱", "마르퀴스", "X1", "로보 워크", "미니 마사지건",
]
_COLORS = ["블랙", "화이트", "브라운", "그레이", "레드"]
_PLACES = [
    "강남", "잠실", "여의도", "판교", "분당", "일산", "수원", "송도", "센텀", "수성", "상무",
    "둔산", "삼산", "청주", "천안", "전주", "창원", "제주", "원주", "춘천",
]
_STORES = ["직영점", "현대백화점", "롯데백화점", "신세계백화점", "아울렛", "스타필드"]
_REGIONS = ["서울", "경기", "인천", "강원", "충청", "호남", "대구", "부산", "경남", "제주"]

VOCABULARY: dict[str, list] = {
    "surname": ["김", "김", "김", "김", "이", "이", "이", "박", "박", "최", "정", "강", "조", "윤",
                "장", "임", "한", "오", "서", "신", "권", "황", "안", "송", "류", "전", "홍", "고",
                "문", "양", "손", "배", "백", "허", "남궁", "선우", "제갈"],
    "given_name": ["민준", "서준", "도윤", "예준", "시우", "하준", "지호", "주원", "지후", "준우",
                   "서연", "서윤", "지우", "서현", "민서", "하은", "하윤", "윤서", "지민", "채원",
                   "영수", "영희", "철수", "순자", "정숙", "미경", "상철", "성호", "경희", "은주",
                   "혜진", "동현", "현우", "지훈", "수빈", "예린", "가은", "다은", "승민", "재현",
                   "태윤", "나연", "유진", "소윤", "민지", "현정", "미숙", "영호", "광수", "옥순",
                   "훈", "진", "솔"],
    "addr1": ["서울특별시 강남구 역삼동", "서울특별시 강남구 대치동", "서울특별시 서초구 반포동",
              "서울특별시 송파구 잠실동", "서울특별시 마포구 합정동", "서울특별시 노원구 상계동",
              "서울특별시 영등포구 여의도동", "서울특별시 관악구 신림동", "서울특별시 강서구 화곡동",
              "서울특별시 성북구 길음동", "서울특별시 은평구 불광동", "서울특별시 용산구 이촌동",
              "부산광역시 해운대구 우동", "부산광역시 부산진구 부전동", "부산광역시 사하구 하단동",
              "대구광역시 수성구 범어동", "대구광역시 달서구 월성동", "인천광역시 연수구 송도동",
              "인천광역시 남동구 구월동", "광주광역시 서구 치평동", "광주광역시 북구 운암동",
              "대전광역시 유성구 봉명동", "대전광역시 서구 둔산동", "울산광역시 남구 삼산동",
              "세종특별자치시 보람동", "경기도 성남시 분당구 정자동", "경기도 수원시 영통구 매탄동",
              "경기도 고양시 일산동구 장항동", "경기도 용인시 수지구 풍덕천동",
              "경기도 화성시 반송동", "경기도 부천시 중동", "경기도 안양시 동안구 평촌동",
              "경기도 남양주시 다산동", "경기도 파주시 동패동", "경기도 김포시 장기동",
              "경기도 평택시 비전동", "경기도 가평군 가평읍", "충청북도 청주시 흥덕구 복대동",
              "충청남도 천안시 서북구 불당동", "충청남도 아산시 배방읍",
              "전북특별자치도 전주시 완산구 효자동", "전라남도 순천시 연향동",
              "전라남도 해남군 해남읍", "경상북도 포항시 남구 대잠동", "경상북도 구미시 옥계동",
              "경상남도 창원시 성산구 상남동", "경상남도 김해시 내외동",
              "강원특별자치도 춘천시 퇴계동", "강원특별자치도 원주시 무실동",
              "제주특별자치도 제주시 연동", "제주특별자치도 서귀포시 서홍동"],
    "apartment": ["래미안", "자이", "힐스테이트", "푸르지오", "e편한세상", "아이파크", "롯데캐슬",
                  "더샵", "SK뷰", "주공", "현대", "한신", "삼성쉐르빌", "우성", "한양"],
    "mobile_prefix": ["010"] * 12 + ["011", "016", "019"],
    "area_code": ["02", "02", "031", "031", "032", "033", "041", "042", "043", "044", "051",
                  "052", "053", "054", "055", "061", "062", "063", "064", "070"],
    "email_user": ["kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim",
                   "minsu", "jiyoung", "seoyeon", "happy", "sky", "star", "bf", "sun", "Moon",
                   "hong.gd", "k_lee"],
    "email_domain": ["naver.com", "naver.com", "gmail.com", "daum.net", "hanmail.net",
                     "kakao.com", "nate.com", "hotmail.com", "bodyfriend.co.kr"],
    "memo": [
        "배송 전 연락 바랍니다", "부재 시 경비실에 맡겨주세요", "고객 요청: 오후 2시 이후 방문",
        "엘리베이터 없음, 3층", 'A/S 접수, "소음" 발생', "고객이 '빠른 처리' 요청함",
        "리모컨 작동 안 됨,\t배터리 교체 안내", "1차 통화 부재\n2차 통화 완료",
        "사진 경로: C:\\bodyfriend\\as\\사진.jpg", "주소 변경 요청 (구 주소: 서울시, 신 주소: 경기도)",
        "렌탈료 할인 적용, 프로모션 중복 불가", "☆VIP 고객☆ 응대 주의",
        "설치 시 바닥 보호 매트 필요", "결제일 변경 요청 5일→25일", "CMS 출금 실패 1회",
        "고객 불만: 설치 기사 지연 도착", "타사 제품 회수 요청", "계약서 재발송 (이메일)",
        "해피콜 완료; 만족", '"정상" 처리', "반려동물 있음 - 방문 시 유의",
        "주차 불가, 인근 공영주차장 이용", "모델명 확인 필요 / 시리얼 불일치",
        "탭\t구분\t메모", "줄바꿈\r\n윈도우식", "끝에 백슬래시 \\", "100% 만족",
        "O'Brien 고객 (외국인)", "  앞뒤 공백 있음  ", "쉼표,가,많은,메모",
        "SELECT * FROM 메모; -- 입력 오류", "이모지 😀 포함", "미납 3개월 → 채권팀 이관",
        "설치 완료 후 사용법 안내함", "부품(모터) 교체, 재방문 예정", "고객센터 콜백 요청",
        "정기점검 완료 - 이상 없음", "마사지 강도 약함 불만", "온열 기능 미작동",
        "소음 심함: 등받이 부분",
    ],
    "model": _MODELS,
    "color": _COLORS + ["샴페인골드", "네이비"],
    "goods": [f"{model} {color}" for model in _MODELS for color in _COLORS],
    "lounge": [f"{place} {store}" for store in _STORES for place in _PLACES],
    "symptom_big": ["소음", "작동불량", "전원", "외관파손", "리모컨", "마사지강도", "온열", "기타"],
    "symptom_mid": [
        "모터 소음", "에어백 소음", "롤러 소음", "진동 소음", "기타 소음",
        "등판 작동불량", "다리부 작동불량", "에어백 미작동", "롤러 멈춤", "프로그램 오류",
        "전원 안 켜짐", "전원 꺼짐 반복", "어댑터 발열", "누전 차단", "대기전력 이상",
        "커버 찢어짐", "도장 벗겨짐", "프레임 파손", "팔걸이 파손", "바퀴 파손",
        "버튼 불량", "화면 불량", "페어링 불가", "배터리 방전", "리모컨 분실",
        "강도 약함", "강도 강함", "강도 조절 불가", "부위별 편차", "속도 이상",
        "온열 안 됨", "과열", "온도 조절 불가", "온열 부위 편차", "온열 소음",
        "냄새", "사용법 문의", "이전 설치 후 이상", "원인 불명", "기타 증상",
    ],
    "symptom_sml": ["간헐적 발생", "지속 발생", "특정 모드에서 발생", "전원 투입 시 발생",
                    "장시간 사용 후 발생", "설치 직후 발생"],
    "item_group": ["안마의자", "안마베드", "라클라우드", "정수기", "공기청정기", "소모품",
                   "부품-모터", "부품-에어백", "부품-리모컨", "부품-커버", "부품-롤러",
                   "부품-메인보드", "부품-어댑터", "부품-프레임", "액세서리", "의료기기",
                   "렌탈상품", "판매상품", "체험상품", "리퍼상품", "전시상품", "사은품",
                   "B2B상품", "해외상품", "단종상품", "세트상품", "케어상품", "서비스상품",
                   "설치자재", "기타"],
    "sales_grp": [f"{region}{team}팀" for team in range(1, 5) for region in _REGIONS],
    "sales_org": ["본사", "직영영업본부", "백화점영업본부", "온라인사업부", "홈쇼핑사업부",
                  "B2B사업부", "수도권지사", "영남지사", "호남지사", "충청지사", "강원지사",
                  "제주지사"],
    "call_group": [f"{kind} {group}그룹" for kind in ("인바운드", "아웃바운드", "해피콜", "채권",
                                                     "A/S") for group in range(1, 6)],
    "department": ["영업1팀", "영업2팀", "CS팀", "A/S팀", "물류팀", "마케팅팀", "온라인팀",
                   "재무팀", "채권관리팀", "IT팀", "경영지원팀", "품질관리팀"],
    "position": ["사원", "주임", "대리", "과장", "차장", "부장", "팀장", "이사", "매니저",
                 "엔지니어"],
    "promotion": ["신년 특가 프로모션", "봄맞이 렌탈료 할인", "가정의 달 이벤트",
                  "블랙프라이데이", "추석 감사 대전", "제휴카드 청구할인", "리뉴얼 기념 사은품",
                  "체험단 모집", "재렌탈 고객 혜택", "임직원 특별가"],
    "message_title": ["주문 접수 안내", "배송 일정 안내", "설치 완료 안내", "A/S 접수 안내",
                      "결제 실패 안내", "해피콜 안내", "계약 만료 안내"],
    "message_body": [
        "#{고객명}님, 주문이 접수되었습니다.\n주문번호: #{주문번호}",
        "#{고객명}님, #{배송일} 배송 예정입니다.\n문의: 1577-4200",
        "[바디프랜드] #{고객명}님의 A/S 접수가 완료되었습니다. (접수번호 #{접수번호})",
        "#{고객명}님, 렌탈료 결제가 실패했습니다.\n결제수단을 확인해 주세요.",
    ],
    "button_json": [
        '{"button":[{"name":"주문조회","type":"WL","url_mobile":"https://m.bodyfriend.co.kr"}]}',
        '{"button":[{"name":"상담원 연결","type":"BC"}]}',
    ],
    "gift": ["안마 쿠션", "바디프랜드 담요", "공기청정기", "상품권 5만원", "무선 마사지건",
             "없음", "발 마사지기"],
    "media": ["네이버 검색광고", "카카오 모먼트", "유튜브", "TV 홈쇼핑(GS)", "TV 홈쇼핑(CJ)",
              "인스타그램", "지인 추천", "신문 광고"],
    "utm_source": ["naver", "google", "kakao", "instagram", "youtube", "facebook", "direct"],
    "utm_campaign": ["2024_newyear", "spring_sale", "brand_search", "retargeting_cart",
                     "homeshopping_live"],
    "room": ["거실", "안방", "서재", "작은방", "사무실", "매장"],
    "english_name": ["KIM MINJUN", "LEE SEOYEON", "John Smith", "Nguyen Van An", "Tanaka Yuki",
                     "PARK JI-HOO"],
    "company": ["(주)바디케어", "한빛상사", "주식회사 대한물산", "미래헬스케어(주)",
                "서울정형외과의원", "(유)그린테크", "해피요양원"],
    "error_code": [f"E{n:02d}" for n in range(1, 13)],
    "part": ["메인모터", "에어백", "리모컨", "등받이 커버", "다리 롤러", "전원 어댑터",
             "메인보드", "스피커", "온열 패드", "발바닥 롤러"],
    "firmware": ["v1.0.3", "v1.2.0", "v2.0.1", "v2.1.7", "v3.0.0-beta"],
    "record_file": [f"REC_{n:04d}.wav" for n in range(1, 21)],
    "inquiry_title": ["렌탈 가능 여부 문의", "체험 예약 문의", "A/S 접수 문의", "설치 가능 일정",
                      "가격 문의", "해지 방법 문의"],
    "major_cd": [m.major_cd for m in CODE_BOOK],
    "major_nm": [m.major_nm for m in CODE_BOOK],
    "major_minor_len": [max(len(cd) for cd, _ in m.minors) for m in CODE_BOOK],
    "minor_major_cd": [m.major_cd for m in CODE_BOOK for _ in m.minors],
    "minor_cd": [cd for m in CODE_BOOK for cd, _ in m.minors],
    "minor_nm": [nm for m in CODE_BOOK for _, nm in m.minors],
    "minor_seq": [seq for m in CODE_BOOK for seq in range(1, len(m.minors) + 1)],
}
MINOR_CODES = {m.major_cd: [cd for cd, _ in m.minors] for m in CODE_BOOK}
SIGNATURE_HEADER = b"\x89PNG\r\n\x1a\n"


def seed_legacy(
    url: URL | str,
    rows: int = 20_000,
    *,
    start: dt.date = dt.date(2024, 1, 1),
    days: int = 7,
    tables: Iterable[str] | None = None,
    seed: int = 7,
) -> dict[str, int]:
    """(Re)create the stand-in legacy tables at ``url`` and fill them; rows written per table.

    ``rows`` is the size of the four large tables; the medium transactional tables get a quarter
    of it, master tables a fixed size. Audit timestamps fall in [start, start + days) (naive,
    Korean local time). ``tables`` (catalog names) limits which tables are recreated; references
    into tables seeded by another call stay valid as long as ``rows``, ``start``, ``days`` and
    ``seed`` are the same.
    """
    if rows < 1 or days < 1:
        raise ValueError("rows and days must be at least 1")
    run = _Run(rows=rows, start=start, days=days, seed=seed)
    catalog = load_catalog()
    if tables is None:
        chosen = [TABLES[t.qualified_name] for t in catalog.tables]
    else:
        chosen = [stand_in(name) for name in tables]
    engine = sa.create_engine(_psycopg2_url(url))
    written: dict[str, int] = {}
    try:
        with engine.begin() as conn:
            for schema in sorted({t.source_schema for t in catalog.tables}):
                conn.execute(CreateSchema(schema, if_not_exists=True))
            _create_crypto_functions(conn)
        for table in chosen:
            began = time.monotonic()
            with engine.begin() as conn:
                written[table.qualified_name] = _fill(conn, run, table)
            log.info(
                "seeded %s: %d rows in %.1f s",
                table.qualified_name, written[table.qualified_name], time.monotonic() - began,
            )
    finally:
        engine.dispose()
    return written


def _psycopg2_url(url: URL | str) -> URL:
    url = make_url(url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"the stand-in lives on PostgreSQL, not {url.get_backend_name()}")
    return url.set(drivername="postgresql+psycopg2")


def _create_crypto_functions(conn: Connection) -> None:
    quote = conn.dialect.identifier_preparer.quote
    encrypt = f"{quote(CRYPTO_SCHEMA)}.{quote(ENCRYPT_FUNCTION)}"
    decrypt = f"{quote(CRYPTO_SCHEMA)}.{quote(DECRYPT_FUNCTION)}"
    # A reversible stand-in for the ERP's cipher: a marker, then base64 of the UTF-8 bytes.
    # Text without the marker (never encrypted) decrypts to itself.
    conn.execute(sa.text(
        f"CREATE OR REPLACE FUNCTION {encrypt}(plain text) RETURNS text "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ "
        "SELECT CASE WHEN plain = '' THEN '' ELSE 'ENC1:' "
        "|| translate(encode(convert_to(plain, 'UTF8'), 'base64'), E'\\n', '') END $$"
    ))
    conn.execute(sa.text(
        f"CREATE OR REPLACE FUNCTION {decrypt}(cipher text) RETURNS text "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ "
        "SELECT CASE WHEN left(cipher, 5) = 'ENC1:' "
        "THEN convert_from(decode(substr(cipher, 6), 'base64'), 'UTF8') ELSE cipher END $$"
    ))


def _fill(conn: Connection, run: _Run, table: StandInTable) -> int:
    target = sqlalchemy_table(table.qualified_name)
    conn.execute(DropTable(target, if_exists=True))
    conn.execute(CreateTable(target))
    statement = _InsertStatement(run, conn.dialect.identifier_preparer)
    sql = statement.build(table)
    # Joining the template pool sorts or hashes every row; keep that in memory.
    conn.execute(sa.text("SELECT set_config('work_mem', :size, true)"), {"size": "256MB"})
    written = conn.execute(sa.text(sql), statement.params).rowcount
    # The declared indexes (the keyset index) are built once the rows are in: faster than
    # maintaining them row by row.
    for index in target.indexes:
        index.create(conn)
    conn.execute(sa.text(f"ANALYZE {statement.qualified(table)}"))
    return written


@dataclass(frozen=True)
class _Run:
    """The parameters of one seeding: how big, when, which seed."""

    rows: int
    start: dt.date
    days: int
    seed: int

    def size(self, table: StandInTable) -> int:
        if table.rows == "large":
            return self.rows
        if table.rows == "medium":
            return max(self.rows // 4, min(self.rows, MEDIUM_MIN_ROWS))
        return table.rows

    def salt(self, *parts: object) -> int:
        return zlib.crc32("/".join(map(str, (self.seed, *parts))).encode())


class _InsertStatement:
    """Builds the ``INSERT ... SELECT`` that fills one table: fixed SQL text, bound values.

    Column values are SQL expressions of a row number ``i``: ``g`` (the row, 1..n) for per-row
    columns, ``t`` (the template, 0..pool-1) for pooled ones, or, for a reference, an
    expression giving the row number in the referenced table.
    """

    def __init__(self, run: _Run, preparer) -> None:
        self.run = run
        self.preparer = preparer
        self.params: dict[str, object] = {}
        self._names: dict[tuple, str] = {}

    # -- assembling -------------------------------------------------------------------------

    def qualified(self, table: StandInTable) -> str:
        entry = table.catalog_entry
        quote = self.preparer.quote
        return f"{self.preparer.quote_schema(entry.source_schema)}.{quote(entry.name)}"

    def build(self, table: StandInTable) -> str:
        names = ", ".join(self.preparer.quote(c.pg_name) for c in table.columns)
        select, pooled = [], []
        for column in table.columns:
            if column.kind in PER_ROW_KINDS:
                select.append(self.value(table, column, "g"))
            else:
                alias = f"v{len(pooled)}"
                pooled.append(f"{self.value(table, column, 't')} AS {alias}")
                select.append(f"pool.{alias}")
        rows = f"generate_series(1, {self.size(table)}) AS g"
        sql = f"INSERT INTO {self.qualified(table)} ({names}) "
        if not pooled:
            return sql + f"SELECT {', '.join(select)} FROM {rows}"
        pool = self.bind(min(self.run.size(table), POOL_ROWS), "bigint")
        return sql + (
            f"WITH pool AS MATERIALIZED (SELECT t, {', '.join(pooled)} "
            f"FROM generate_series(0, {pool} - 1) AS t) "
            f"SELECT {', '.join(select)} FROM {rows} JOIN pool ON pool.t = g % {pool}"
        )

    def bind(self, value: object, sql_type: str) -> str:
        """A placeholder for ``value``, cast to ``sql_type``; equal values share one."""
        key = (sql_type, tuple(value) if isinstance(value, list) else value)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"p{len(self._names)}"
            self.params[name] = value
        return f"CAST(:{name} AS {sql_type})"

    def array(self, values: list) -> str:
        return self.bind(list(values), "bigint[]" if isinstance(values[0], int) else "text[]")

    # -- pseudo-random building blocks -------------------------------------------------------

    def hash(self, i: str, *salt: object) -> str:
        """A 31-bit non-negative hash of row ``i``, different for every ``salt``."""
        seed = self.bind(self.run.salt(*salt), "bigint")
        return f"(hashint8extended(({i})::bigint, {seed}) & 2147483647)"

    def unit(self, i: str, *salt: object) -> str:
        """A number in [0, 1)."""
        return f"({self.hash(i, *salt)}::float8 / 2147483648)"

    def index(self, i: str, count: str, *salt: object) -> str:
        """A number in 1..count."""
        return f"(1 + {self.hash(i, *salt)} % {count})"

    def choose(self, values: list, i: str, *salt: object) -> str:
        count = self.bind(len(values), "bigint")
        return f"({self.array(values)})[{self.index(i, count, *salt)}]"

    def digits(self, count: int, i: str, *salt: object) -> str:
        parts = []
        for part, start in enumerate(range(0, count, 9)):
            width = min(9, count - start)
            modulus = self.bind(10**width, "bigint")
            number = f"({self.hash(i, *salt, part)} % {modulus})::text"
            parts.append(f"lpad({number}, {self.bind(width, 'integer')}, '0')")
        return " || ".join(parts)

    # -- time ----------------------------------------------------------------------------------

    def size(self, table: StandInTable) -> str:
        return self.bind(self.run.size(table), "bigint")

    def day(self, table: StandInTable, i: str) -> str:
        """Which day of the window row ``i`` was entered on: rows fill the days in order."""
        return f"((({i}) - 1) * {self.bind(self.run.days, 'bigint')} / {self.size(table)})"

    def day_position(self, table: StandInTable, i: str) -> str:
        """Row ``i``'s place (0-based) among the rows entered on its day."""
        days, n = self.bind(self.run.days, "bigint"), self.size(table)
        first = f"(({self.day(table, i)} * {n} + {days} - 1) / {days})"
        return f"(({i}) - 1 - {first})"

    def inserted(self, table: StandInTable, i: str) -> str:
        """INSRT_DT of row ``i`` in 1/300 s ticks after the window's start."""
        day = self.day(table, i)
        per_day = self.bind(TICKS_PER_DAY, "bigint")
        window = self.bind(self.run.days * TICKS_PER_DAY, "float8")
        spread = (
            f"least(floor(((({i}) - 1) + {self.unit(i, table.qualified_name, 'inserted')}) "
            f"* {window} / {self.size(table)})::bigint, ({day} + 1) * {per_day} - 1)"
        )
        batch = f"{day} * {per_day} + {self.bind(INSERT_BATCH_AT, 'bigint')}"
        chance = self.unit(i, table.qualified_name, "insert batch")
        return (
            f"(CASE WHEN {chance} < {self.bind(BATCH_INSERTED, 'float8')} "
            f"THEN {batch} ELSE {spread} END)"
        )

    def updated(self, table: StandInTable, i: str) -> str:
        """UPDT_DT of row ``i`` in ticks: unchanged, the next nightly batch, or any later time."""
        inserted, day = self.inserted(table, i), self.day(table, i)
        per_day = self.bind(TICKS_PER_DAY, "bigint")
        window = self.bind(self.run.days * TICKS_PER_DAY, "bigint")
        chance = self.unit(i, table.qualified_name, "updated")
        later = self.unit(i, table.qualified_name, "update time")
        return (
            f"(CASE WHEN {chance} < {self.bind(NEVER_UPDATED, 'float8')} THEN {inserted} "
            f"WHEN {chance} < {self.bind(NEVER_UPDATED + BATCH_UPDATED, 'float8')} "
            f"AND {day} + 1 < {self.bind(self.run.days, 'bigint')} "
            f"THEN ({day} + 1) * {per_day} + {self.bind(UPDATE_BATCH_AT, 'bigint')} "
            f"ELSE {inserted} + floor({later} * ({window} - {inserted}))::bigint END)"
        )

    def timestamp(self, ticks: str) -> str:
        # (ticks * 10 + 1) / 3 rounds 1/300 s ticks to SQL Server's .000/.003/.007 milliseconds.
        start = self.bind(self.run.start, "timestamp")
        return f"({start} + ((({ticks}) * 10 + 1) / 3) * interval '1 millisecond')"

    def date_of(self, column: Column, days_after_start: str) -> str:
        day = f"({self.bind(self.run.start, 'date')} + ({days_after_start})::integer)"
        return f"to_char({day}, 'YYYYMMDD')" if column.type.is_text else day

    # -- references ----------------------------------------------------------------------------

    def parent_row(self, table: StandInTable, i: str) -> str:
        """The row number in ``table.parent`` that row ``i`` belongs to."""
        parent = TABLES[table.parent]
        n_parent, n_child = self.run.size(parent), self.run.size(table)
        if table.per_parent is None:
            # Any parent row entered no later (proportionally) than this row.
            earlier = f"greatest(1, ({i}) * {self.size(parent)} / {self.size(table)})"
            return self.index(i, earlier, table.qualified_name, "parent")
        groups = -(-n_child // table.per_parent)
        if groups > n_parent:
            raise ValueError(
                f"{table.qualified_name}: {groups} groups of rows but only {n_parent} rows in "
                f"{parent.qualified_name}; seed with more rows"
            )
        group = f"((({i}) - 1) / {self.bind(table.per_parent, 'bigint')})"
        return f"(1 + {group} * {self.size(parent)} / {self.bind(groups, 'bigint')})"

    def ancestor_row(self, table: StandInTable, ancestor: StandInTable, i: str) -> str | None:
        current = table
        while current.parent is not None:
            i = self.parent_row(current, i)
            current = TABLES[current.parent]
            if current is ancestor:
                return i
        return None

    def referenced(self, column: Column) -> tuple[StandInTable, Column]:
        table_name, column_name = column.arg.split(".")
        target = stand_in(table_name)
        target_column = target.column(column_name)
        if target_column.kind not in PER_ROW_KINDS:
            raise ValueError(f"{column.name} refers to {column.arg}, which is not per row")
        return target, target_column

    # -- values ----------------------------------------------------------------------------------

    def value(self, table: StandInTable, column: Column, i: str) -> str:
        expression = getattr(self, f"_{column.kind}")(table, column, i)
        if not column.blank:
            return expression
        chance = self.unit(i, table.qualified_name, column.name, "blank")
        if not column.type.is_text:
            return (
                f"(CASE WHEN {chance} < {self.bind(column.blank, 'float8')} THEN NULL "
                f"ELSE {expression} END)"
            )
        return (
            f"(CASE WHEN {chance} < {self.bind(column.blank / 2, 'float8')} THEN NULL "
            f"WHEN {chance} < {self.bind(column.blank, 'float8')} THEN '' "
            f"ELSE {expression} END)"
        )

    def _serial(self, table: StandInTable, column: Column, i: str) -> str:
        return f"(({i})::text)" if column.type.is_text else f"({i})"

    def daily_number(
        self, table: StandInTable, column: Column, i: str, prefix: str, serial: str, prefixes: int
    ) -> str:
        """``prefix`` + YYMMDD of row ``i``'s day + ``serial`` (from 0) + 1, zero-padded.

        ``prefixes`` is how many prefixes share the day's rows, for the width of the serial.
        """
        most = self.run.size(table) // (self.run.days * prefixes) + 2
        width = self.bind(max(5, len(str(most))), "integer")
        day = self.date_of(column, self.day(table, i))
        return f"({prefix} || substr({day}, 3) || lpad(({serial} + 1)::text, {width}, '0'))"

    def _order_no(self, table: StandInTable, column: Column, i: str) -> str:
        # The day's rows take the prefixes in turn, so one day's keys sort under all five.
        position = self.day_position(table, i)
        count = self.bind(len(ORDER_PREFIXES), "bigint")
        prefix = f"({self.array(ORDER_PREFIXES)})[1 + {position} % {count}]"
        serial = f"{position} / {count}"
        return self.daily_number(table, column, i, prefix, serial, len(ORDER_PREFIXES))

    def _doc_no(self, table: StandInTable, column: Column, i: str) -> str:
        prefix = self.bind(column.arg, "text")
        return self.daily_number(table, column, i, prefix, self.day_position(table, i), 1)

    def _cust_no(self, table: StandInTable, column: Column, i: str) -> str:
        return f"(({self.bind(CUST_NO_BASE, 'bigint')} + ({i}))::text)"

    def _code_no(self, table: StandInTable, column: Column, i: str) -> str:
        prefix, width = column.arg
        padded = f"lpad(({i})::text, {self.bind(width, 'integer')}, '0')"
        return f"({self.bind(prefix, 'text')} || {padded})" if prefix else padded

    def child_position(self, table: StandInTable, i: str) -> str:
        """Row ``i``'s place (1-based) among the rows of its parent row."""
        return f"((({i}) - 1) % {self.bind(table.per_parent, 'bigint')} + 1)"

    def _child_no(self, table: StandInTable, column: Column, i: str) -> str:
        number = self.child_position(table, i)
        if not column.type.is_text:
            return number
        return f"lpad({number}::text, {self.bind(column.arg, 'integer')}, '0')"

    def _child_value(self, table: StandInTable, column: Column, i: str) -> str:
        if len(column.arg) != table.per_parent:
            raise ValueError(f"{column.name}: one value per row of a parent's group is needed")
        return f"({self.array(list(column.arg))})[{self.child_position(table, i)}]"

    def _label(self, table: StandInTable, column: Column, i: str) -> str:
        values = VOCABULARY[column.arg]
        count = self.bind(len(values), "bigint")
        return f"({self.array(values)})[(({i}) - 1) % {count} + 1]"

    def _ref(self, table: StandInTable, column: Column, i: str) -> str:
        target, target_column = self.referenced(column)
        row = self.ancestor_row(table, target, i)
        if row is None:
            # Not up the parent chain: any row, the same one for every column naming the table.
            salt = (table.qualified_name, "ref", target.qualified_name)
            row = self.index(i, self.size(target), *salt)
        return self.value(target, target_column, row)

    def _pick(self, table: StandInTable, column: Column, i: str) -> str:
        target, target_column = self.referenced(column)
        row = self.index(i, self.size(target), table.qualified_name, column.name)
        return self.value(target, target_column, row)

    def _insrt_dt(self, table: StandInTable, column: Column, i: str) -> str:
        return self.timestamp(self.inserted(table, i))

    def _updt_dt(self, table: StandInTable, column: Column, i: str) -> str:
        return self.timestamp(self.updated(table, i))

    def _row_ymd(self, table: StandInTable, column: Column, i: str) -> str:
        first, last = column.arg
        span = self.bind(last - first + 1, "bigint")
        offset = self.index(i, span, table.qualified_name, column.name)
        before = self.bind(first - 1, "bigint")
        return self.date_of(column, f"{self.day(table, i)} + {before} + {offset}")

    def _row_time(self, table: StandInTable, column: Column, i: str) -> str:
        first, last = column.arg
        span = self.bind((last - first) * TICKS_PER_MINUTE, "float8")
        offset = f"floor({self.unit(i, table.qualified_name, column.name)} * {span})::bigint"
        start = self.bind(first * TICKS_PER_MINUTE, "bigint")
        return self.timestamp(f"{self.inserted(table, i)} + {start} + {offset}")

    def _ymd(self, table: StandInTable, column: Column, i: str) -> str:
        first, last = (dt.datetime.strptime(d, "%Y%m%d").date() for d in column.arg)
        span = self.bind((last - first).days + 1, "bigint")
        before = self.bind((first - self.run.start).days - 1, "bigint")
        offset = self.index(i, span, table.qualified_name, column.name)
        return self.date_of(column, f"{before} + {offset}")

    def _code(self, table: StandInTable, column: Column, i: str) -> str:
        return self.choose(MINOR_CODES[column.arg], i, table.qualified_name, column.name)

    def _person_name(self, table: StandInTable, column: Column, i: str) -> str:
        salt = (table.qualified_name, column.name)
        surname = self.choose(VOCABULARY["surname"], i, *salt, "surname")
        given = self.choose(VOCABULARY["given_name"], i, *salt, "given")
        return f"({surname} || {given} || {self.trailing_space(i, *salt)})"

    def trailing_space(self, i: str, *salt: object) -> str:
        chance = self.unit(i, *salt, "trailing space")
        return f"(CASE WHEN {chance} < {self.bind(TRAILING_SPACE, 'float8')} THEN ' ' ELSE '' END)"

    def _phone(self, table: StandInTable, column: Column, i: str) -> str:
        salt = (table.qualified_name, column.name)
        if column.arg == "mobile":
            prefix = self.choose(VOCABULARY["mobile_prefix"], i, *salt, "prefix")
            number = self.digits(8, i, *salt)
            middle, last = f"substr({number}, 1, 4)", f"substr({number}, 5, 4)"
        else:
            prefix = self.choose(VOCABULARY["area_code"], i, *salt, "prefix")
            number = self.digits(7, i, *salt)
            middle, last = f"substr({number}, 1, 3)", f"substr({number}, 4, 4)"
        # Most numbers are written with hyphens, some without, as typed into the ERP.
        hyphen = f"(CASE WHEN {self.unit(i, *salt, 'format')} < 0.9 THEN '-' ELSE '' END)"
        return f"({prefix} || {hyphen} || {middle} || {hyphen} || {last})"

    def _enc_phone(self, table: StandInTable, column: Column, i: str) -> str:
        function = f"{self.preparer.quote(CRYPTO_SCHEMA)}.{self.preparer.quote(ENCRYPT_FUNCTION)}"
        return f"{function}({self._phone(table, column, i)})"

    def _email(self, table: StandInTable, column: Column, i: str) -> str:
        salt = (table.qualified_name, column.name)
        user = self.choose(VOCABULARY["email_user"], i, *salt, "user")
        number = f"({self.hash(i, *salt, 'number')} % 10000)::text"
        domain = self.choose(VOCABULARY["email_domain"], i, *salt, "domain")
        return f"({user} || {number} || '@' || {domain})"

    def _zip(self, table: StandInTable, column: Column, i: str) -> str:
        number = f"(1000 + {self.hash(i, table.qualified_name, column.name)} % 63000)::text"
        return f"lpad({number}, 5, '0')"

    def _addr1(self, table: StandInTable, column: Column, i: str) -> str:
        return self.choose(VOCABULARY["addr1"], i, table.qualified_name, column.name)

    def _addr2(self, table: StandInTable, column: Column, i: str) -> str:
        salt = (table.qualified_name, column.name)
        lot = (
            f"(1 + {self.hash(i, *salt, 'lot')} % 999)::text || '-' "
            f"|| (1 + {self.hash(i, *salt, 'sub')} % 60)::text"
        )
        apartment = (
            f"{self.choose(VOCABULARY['apartment'], i, *salt, 'apartment')} || ' ' "
            f"|| (101 + {self.hash(i, *salt, 'building')} % 15)::text || '동 ' "
            f"|| (1 + {self.hash(i, *salt, 'floor')} % 25)::text "
            f"|| lpad((1 + {self.hash(i, *salt, 'unit')} % 4)::text, 2, '0') || '호'"
        )
        kind = self.unit(i, *salt, "kind")
        return (
            f"((CASE WHEN {kind} < 0.4 THEN {lot} ELSE {apartment} END) "
            f"|| {self.trailing_space(i, *salt)})"
        )

    def _yn(self, table: StandInTable, column: Column, i: str) -> str:
        return f"(CASE WHEN {self._flag(table, column, i)} THEN 'Y' ELSE 'N' END)"

    def _flag(self, table: StandInTable, column: Column, i: str) -> str:
        chance = self.unit(i, table.qualified_name, column.name)
        return f"({chance} < {self.bind(column.arg, 'float8')})"

    def _amount(self, table: StandInTable, column: Column, i: str) -> str:
        low, high, step = (Decimal(str(x)) for x in column.arg)
        steps = self.bind(int((high - low) / step) + 1, "bigint")
        chosen = f"({self.index(i, steps, table.qualified_name, column.name)} - 1)"
        return f"({self.bind(low, 'numeric')} + {chosen} * {self.bind(step, 'numeric')})"

    def _integer(self, table: StandInTable, column: Column, i: str) -> str:
        low, high = column.arg
        span = self.bind(high - low + 1, "bigint")
        chosen = self.index(i, span, table.qualified_name, column.name)
        return f"({self.bind(low - 1, 'bigint')} + {chosen})"

    def _real(self, table: StandInTable, column: Column, i: str) -> str:
        low, high = column.arg
        chance = self.unit(i, table.qualified_name, column.name)
        return f"({self.bind(low, 'float8')} + {chance} * {self.bind(high - low, 'float8')})"

    def _word(self, table: StandInTable, column: Column, i: str) -> str:
        values = VOCABULARY[column.arg] if isinstance(column.arg, str) else list(column.arg)
        return self.choose(values, i, table.qualified_name, column.name)

    def _memo(self, table: StandInTable, column: Column, i: str) -> str:
        salt = (table.qualified_name, column.name)
        first = self.choose(VOCABULARY["memo"], i, *salt, "first")
        second = self.choose(VOCABULARY["memo"], i, *salt, "second")
        both = f"{self.unit(i, *salt, 'both')} < 0.3"
        return f"({first} || (CASE WHEN {both} THEN ' / ' || {second} ELSE '' END))"

    def _digits(self, table: StandInTable, column: Column, i: str) -> str:
        return f"({self.digits(column.arg, i, table.qualified_name, column.name)})"

    def _uuid(self, table: StandInTable, column: Column, i: str) -> str:
        salt = self.bind(str(self.run.salt(table.qualified_name, column.name)), "text")
        return f"md5({salt} || ({i})::text)::uuid"

    def _image(self, table: StandInTable, column: Column, i: str) -> str:
        salt = self.bind(str(self.run.salt(table.qualified_name, column.name)), "text")
        strokes = " || ".join(
            f"decode(md5({salt} || ({i})::text || {self.bind(str(n), 'text')}), 'hex')"
            for n in range(4)
        )
        return f"({self.bind(SIGNATURE_HEADER, 'bytea')} || {strokes})"
