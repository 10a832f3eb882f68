-- Salesforce Product2, one per ERP product (R_GOODS), fed to hc.product2.
-- A product is active while it is in use and not discontinued. The cost price stays in the
-- Data Hub.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_GOODS
SELECT
    g.goods_cd AS external_id,
    g.goods_nm AS name,
    g.goods_cd AS product_code,
    g.goods_type_nm AS family,
    ig.item_group_nm AS item_group,
    g.model_nm AS model_name,
    g.color_nm AS color,
    g.rental_amt AS monthly_rental_price,
    g.sale_amt AS list_price,
    g.release_dt AS release_date,
    g.warranty_month AS warranty_months,
    g.goods_desc AS description,
    coalesce(g.use_yn, false) AND NOT coalesce(g.discontinue_yn, false) AS is_active,
    g.updt_dt AS erp_updated_at
FROM lv1.r_goods AS g
LEFT JOIN lv1.b_item_group AS ig
    ON ig.item_group_cd = g.item_group_cd
