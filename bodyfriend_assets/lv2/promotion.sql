-- Promotion__c: promotions (R_PROMOTION), fed to hc.promotion; contracts refer to them by
-- promotion_external_id.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_PROMOTION
SELECT
    p.promotion_cd AS external_id,
    p.promotion_nm AS name,
    p.promo_type_nm AS promotion_type,
    p.start_dt AS start_date,
    p.end_dt AS end_date,
    p.discount_rate,
    p.discount_amt AS discount_amount,
    p.free_month_cnt AS free_months,
    p.target_goods_cd AS product_external_id,
    p.remark AS description,
    coalesce(p.use_yn, false) AS is_active,
    p.updt_dt AS erp_updated_at
FROM lv1.r_promotion AS p
