-- ERP users: employees, engineers, sales staff (사용자).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: user_id
-- mode: full
SELECT DISTINCT ON (user_id)
    btrim(s.user_id) AS user_id,
    NULLIF(btrim(s.user_nm), '') AS user_nm,
    NULLIF(btrim(s.dept_nm), '') AS dept_nm,
    NULLIF(btrim(s.position_nm), '') AS position_nm,
    NULLIF(btrim(s.sales_grp), '') AS sales_grp,
    NULLIF(btrim(s.sales_org), '') AS sales_org,
    NULLIF(btrim(s.email), '') AS email,
    NULLIF(regexp_replace(regexp_replace(s.hand_tel_no, '[^0-9]', '', 'g'), '^(02|0[0-9]{2})([0-9]{3,4})([0-9]{4})$', '\1-\2-\3'), '') AS hand_tel_no,
    CASE WHEN btrim(s.enter_dt) ~ '^[0-9]{8}$' AND pg_input_is_valid(btrim(s.enter_dt), 'date') THEN CAST(btrim(s.enter_dt) AS date) END AS enter_dt,
    CASE WHEN btrim(s.retire_dt) ~ '^[0-9]{8}$' AND pg_input_is_valid(btrim(s.retire_dt), 'date') THEN CAST(btrim(s.retire_dt) AS date) END AS retire_dt,
    CASE upper(btrim(s.use_yn)) WHEN 'Y' THEN true WHEN 'N' THEN false END AS use_yn,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.v_erp_user AS s
ORDER BY user_id, s.updt_dt DESC NULLS LAST
