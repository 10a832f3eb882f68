-- Products (상품).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: goods_cd
-- mode: full
SELECT DISTINCT ON (goods_cd)
    btrim(s.goods_cd) AS goods_cd,
    lv1.clean_text(s.goods_nm) AS goods_nm,
    lv1.clean_text(s.goods_type_cd) AS goods_type_cd,
    goods_type.minor_nm AS goods_type_nm,
    lv1.clean_text(s.item_group_cd) AS item_group_cd,
    lv1.clean_text(s.model_nm) AS model_nm,
    lv1.clean_text(s.color_nm) AS color_nm,
    s.rental_amt,
    s.sale_amt,
    s.cost_amt,
    lv1.yyyymmdd_date(s.release_dt) AS release_dt,
    lv1.yes_no(s.discontinue_yn) AS discontinue_yn,
    s.weight_kg,
    s.warranty_month,
    lv1.clean_text(s.goods_desc) AS goods_desc,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_goods AS s
LEFT JOIN lv1.codes('R6001') AS goods_type ON goods_type.minor_cd = btrim(s.goods_type_cd)  -- 상품유형
ORDER BY goods_cd, s.updt_dt DESC NULLS LAST
