-- Reservations to try products in a lounge (체험예약).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: reservation_no
-- mode: full
SELECT DISTINCT ON (reservation_no)
    btrim(s.reservation_no) AS reservation_no,
    lv1.clean_text(s.lounge_cd) AS lounge_cd,
    lv1.clean_text(s.rsv_nm) AS rsv_nm,
    lv1.phone_number(s.rsv_hand_tel_no) AS rsv_hand_tel_no,
    lv1.phone_number(s.rsv_tel_no) AS rsv_tel_no,
    lv1.clean_text(s.rsv_email) AS rsv_email,
    lv1.yyyymmdd_date(s.rsv_dt) AS rsv_dt,
    lv1.clean_text(s.rsv_time) AS rsv_time,
    s.person_cnt,
    lv1.clean_text(s.rsv_status_cd) AS rsv_status_cd,
    rsv_status.minor_nm AS rsv_status_nm,
    lv1.clean_text(s.inflow_path_cd) AS inflow_path_cd,
    inflow_path.minor_nm AS inflow_path_nm,
    lv1.clean_text(s.interest_goods_cd) AS interest_goods_cd,
    lv1.yes_no(s.privacy_agree_yn) AS privacy_agree_yn,
    lv1.yes_no(s.marketing_agree_yn) AS marketing_agree_yn,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.clean_text(s.rsv_memo) AS rsv_memo,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_experience_reservation AS s
LEFT JOIN lv1.codes('R4001') AS rsv_status ON rsv_status.minor_cd = btrim(s.rsv_status_cd)  -- 예약상태
LEFT JOIN lv1.codes('R1003') AS inflow_path ON inflow_path.minor_cd = btrim(s.inflow_path_cd)  -- 판매채널
ORDER BY reservation_no, s.updt_dt DESC NULLS LAST
