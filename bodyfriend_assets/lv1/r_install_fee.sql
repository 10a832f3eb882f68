-- Installation fees per product and validity period (설치비).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- An apply_end_dt of 9999-12-31 means the fee applies until further notice.
--
-- key: goods_cd, apply_start_dt
-- mode: full
SELECT DISTINCT ON (goods_cd, apply_start_dt)
    btrim(s.goods_cd) AS goods_cd,
    lv1.yyyymmdd_date(s.apply_start_dt) AS apply_start_dt,
    lv1.yyyymmdd_date(s.apply_end_dt) AS apply_end_dt,
    s.inst_fee_amt,
    s.stair_fee_amt,
    s.ladder_fee_amt,
    s.remote_area_fee_amt,
    lv1.clean_text(s.remark) AS remark,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_install_fee AS s
ORDER BY goods_cd, apply_start_dt, s.updt_dt DESC NULLS LAST
