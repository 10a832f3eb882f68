-- Sales groups (영업그룹).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: sales_grp
-- mode: full
SELECT DISTINCT ON (sales_grp)
    btrim(s.sales_grp) AS sales_grp,
    NULLIF(btrim(s.sales_grp_nm), '') AS sales_grp_nm,
    NULLIF(btrim(s.sales_org), '') AS sales_org,
    CASE WHEN btrim(s.valid_from_dt) ~ '^[0-9]{8}$' AND pg_input_is_valid(btrim(s.valid_from_dt), 'date') THEN CAST(btrim(s.valid_from_dt) AS date) END AS valid_from_dt,
    CASE upper(btrim(s.use_yn)) WHEN 'Y' THEN true WHEN 'N' THEN false END AS use_yn,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.b_sales_grp AS s
ORDER BY sales_grp, s.updt_dt DESC NULLS LAST
