-- Reservations to try products in a lounge (체험예약).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: reservation_no
-- mode: full
SELECT DISTINCT ON (reservation_no)
    btrim(s.reservation_no) AS reservation_no,
    NULLIF(btrim(s.lounge_cd), '') AS lounge_cd,
    NULLIF(btrim(s.rsv_nm), '') AS rsv_nm,
    lv1.phone_number(s.rsv_hand_tel_no) AS rsv_hand_tel_no,
    lv1.phone_number(s.rsv_tel_no) AS rsv_tel_no,
    NULLIF(btrim(s.rsv_email), '') AS rsv_email,
    lv1.yyyymmdd_date(s.rsv_dt) AS rsv_dt,
    NULLIF(btrim(s.rsv_time), '') AS rsv_time,
    s.person_cnt,
    NULLIF(btrim(s.rsv_status_cd), '') AS rsv_status_cd,
    rsv_status.minor_nm AS rsv_status_nm,
    NULLIF(btrim(s.inflow_path_cd), '') AS inflow_path_cd,
    inflow_path.minor_nm AS inflow_path_nm,
    NULLIF(btrim(s.interest_goods_cd), '') AS interest_goods_cd,
    lv1.yes_no(s.privacy_agree_yn) AS privacy_agree_yn,
    lv1.yes_no(s.marketing_agree_yn) AS marketing_agree_yn,
    NULLIF(btrim(s.cust_no), '') AS cust_no,
    NULLIF(btrim(s.rsv_memo), '') AS rsv_memo,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.r_experience_reservation AS s
LEFT JOIN lv1.code_master AS rsv_status
    ON rsv_status.major_cd = 'R4001' AND rsv_status.minor_cd = btrim(s.rsv_status_cd)  -- 예약상태
LEFT JOIN lv1.code_master AS inflow_path
    ON inflow_path.major_cd = 'R1003' AND inflow_path.minor_cd = btrim(s.inflow_path_cd)  -- 판매채널
ORDER BY reservation_no, s.updt_dt DESC NULLS LAST
