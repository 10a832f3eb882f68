-- Sales lounges and shops (라운지).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: lounge_cd
-- mode: full
SELECT DISTINCT ON (lounge_cd)
    btrim(s.lounge_cd) AS lounge_cd,
    lv1.clean_text(s.lounge_nm) AS lounge_nm,
    lv1.clean_text(s.lounge_type_cd) AS lounge_type_cd,
    lounge_type.minor_nm AS lounge_type_nm,
    lv1.clean_text(s.sales_org) AS sales_org,
    lv1.clean_text(s.zip_cd) AS zip_cd,
    lv1.clean_text(s.addr1) AS addr1,
    lv1.clean_text(s.addr2) AS addr2,
    lv1.phone_number(s.tel_no) AS tel_no,
    s.latitude,
    s.longitude,
    lv1.clean_text(s.open_time) AS open_time,
    lv1.clean_text(s.close_time) AS close_time,
    lv1.yyyymmdd_date(s.open_dt) AS open_dt,
    lv1.yes_no(s.close_yn) AS close_yn,
    lv1.clean_text(s.mng_user_id) AS mng_user_id,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.v_sales_lounge AS s
LEFT JOIN lv1.codes('R7001') AS lounge_type ON lounge_type.minor_cd = btrim(s.lounge_type_cd)  -- 라운지유형
ORDER BY lounge_cd, s.updt_dt DESC NULLS LAST
