-- Sales organisations (영업조직).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: sales_org
-- mode: full
SELECT DISTINCT ON (sales_org)
    btrim(s.sales_org) AS sales_org,
    lv1.clean_text(s.sales_org_nm) AS sales_org_nm,
    s.sales_org_lvl,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.b_sale_org AS s
ORDER BY sales_org, s.updt_dt DESC NULLS LAST
