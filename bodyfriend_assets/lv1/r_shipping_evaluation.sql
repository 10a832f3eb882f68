-- Customer ratings of deliveries (배송평가).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: eval_seq
-- mode: full
SELECT DISTINCT ON (eval_seq)
    s.eval_seq,
    lv1.clean_text(s.shipping_no) AS shipping_no,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.yyyymmdd_date(s.eval_dt) AS eval_dt,
    lv1.clean_text(s.eval_score_cd) AS eval_score_cd,
    eval_score.minor_nm AS eval_score_nm,
    s.kindness_score,
    s.punctuality_score,
    s.install_score,
    lv1.clean_text(s.eval_comment) AS eval_comment,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_shipping_evaluation AS s
LEFT JOIN lv1.codes('R4002') AS eval_score ON eval_score.minor_cd = btrim(s.eval_score_cd)  -- 만족도
ORDER BY eval_seq, s.updt_dt DESC NULLS LAST
