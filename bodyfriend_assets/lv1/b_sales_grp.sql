-- Sales groups (영업그룹).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: sales_grp
-- mode: full
SELECT DISTINCT ON (sales_grp)
    btrim(s.sales_grp) AS sales_grp,
    lv1.clean_text(s.sales_grp_nm) AS sales_grp_nm,
    lv1.clean_text(s.sales_org) AS sales_org,
    lv1.yyyymmdd_date(s.valid_from_dt) AS valid_from_dt,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.b_sales_grp AS s
ORDER BY sales_grp, s.updt_dt DESC NULLS LAST
