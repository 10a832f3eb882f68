-- Promotions (프로모션).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: promotion_cd
-- mode: full
SELECT DISTINCT ON (promotion_cd)
    btrim(s.promotion_cd) AS promotion_cd,
    lv1.clean_text(s.promotion_nm) AS promotion_nm,
    lv1.clean_text(s.promo_type_cd) AS promo_type_cd,
    promo_type.minor_nm AS promo_type_nm,
    lv1.yyyymmdd_date(s.start_dt) AS start_dt,
    lv1.yyyymmdd_date(s.end_dt) AS end_dt,
    s.discount_rate,
    s.discount_amt,
    s.free_month_cnt,
    lv1.clean_text(s.target_goods_cd) AS target_goods_cd,
    lv1.clean_text(s.remark) AS remark,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_promotion AS s
LEFT JOIN lv1.codes('R6003') AS promo_type ON promo_type.minor_cd = btrim(s.promo_type_cd)  -- 프로모션유형
ORDER BY promotion_cd, s.updt_dt DESC NULLS LAST
