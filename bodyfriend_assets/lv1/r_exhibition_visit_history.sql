-- Visits to the sales lounges (전시장 방문이력).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: visit_seq
-- mode: full
SELECT DISTINCT ON (visit_seq)
    s.visit_seq,
    lv1.clean_text(s.lounge_cd) AS lounge_cd,
    lv1.yyyymmdd_date(s.visit_dt) AS visit_dt,
    s.visit_dttm,
    lv1.clean_text(s.visitor_nm) AS visitor_nm,
    lv1.phone_number(s.visitor_hand_tel_no) AS visitor_hand_tel_no,
    s.visitor_cnt,
    lv1.clean_text(s.reservation_no) AS reservation_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.clean_text(s.consult_user_id) AS consult_user_id,
    lv1.clean_text(s.visit_purpose_cd) AS visit_purpose_cd,
    visit_purpose.minor_nm AS visit_purpose_nm,
    lv1.clean_text(s.interest_goods_cd) AS interest_goods_cd,
    s.experience_min,
    lv1.yes_no(s.purchase_yn) AS purchase_yn,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.visit_memo) AS visit_memo,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_exhibition_visit_history AS s
LEFT JOIN lv1.codes('R7002') AS visit_purpose ON visit_purpose.minor_cd = btrim(s.visit_purpose_cd)  -- 방문목적
ORDER BY visit_seq, s.updt_dt DESC NULLS LAST
