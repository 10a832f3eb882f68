-- ERP users: employees, engineers, sales staff (사용자).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: user_id
-- mode: full
SELECT DISTINCT ON (user_id)
    btrim(s.user_id) AS user_id,
    lv1.clean_text(s.user_nm) AS user_nm,
    lv1.clean_text(s.dept_nm) AS dept_nm,
    lv1.clean_text(s.position_nm) AS position_nm,
    lv1.clean_text(s.sales_grp) AS sales_grp,
    lv1.clean_text(s.sales_org) AS sales_org,
    lv1.clean_text(s.email) AS email,
    lv1.phone_number(s.hand_tel_no) AS hand_tel_no,
    lv1.yyyymmdd_date(s.enter_dt) AS enter_dt,
    lv1.yyyymmdd_date(s.retire_dt) AS retire_dt,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.v_erp_user AS s
ORDER BY user_id, s.updt_dt DESC NULLS LAST
