-- Visits to the sales lounges (전시장 방문이력).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: visit_seq
-- mode: full
SELECT DISTINCT ON (visit_seq)
    s.visit_seq,
    NULLIF(btrim(s.lounge_cd), '') AS lounge_cd,
    lv1.yyyymmdd_date(s.visit_dt) AS visit_dt,
    s.visit_dttm,
    NULLIF(btrim(s.visitor_nm), '') AS visitor_nm,
    lv1.phone_number(s.visitor_hand_tel_no) AS visitor_hand_tel_no,
    s.visitor_cnt,
    NULLIF(btrim(s.reservation_no), '') AS reservation_no,
    NULLIF(btrim(s.cust_no), '') AS cust_no,
    NULLIF(btrim(s.consult_user_id), '') AS consult_user_id,
    NULLIF(btrim(s.visit_purpose_cd), '') AS visit_purpose_cd,
    visit_purpose.minor_nm AS visit_purpose_nm,
    NULLIF(btrim(s.interest_goods_cd), '') AS interest_goods_cd,
    s.experience_min,
    lv1.yes_no(s.purchase_yn) AS purchase_yn,
    NULLIF(btrim(s.order_no), '') AS order_no,
    NULLIF(btrim(s.visit_memo), '') AS visit_memo,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.r_exhibition_visit_history AS s
LEFT JOIN lv1.code_master AS visit_purpose
    ON visit_purpose.major_cd = 'R7002' AND visit_purpose.minor_cd = btrim(s.visit_purpose_cd)  -- 방문목적
ORDER BY visit_seq, s.updt_dt DESC NULLS LAST
