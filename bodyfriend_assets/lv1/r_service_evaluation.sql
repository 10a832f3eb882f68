-- Customer ratings of after-sales service visits (서비스평가).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: eval_seq
-- mode: full
SELECT DISTINCT ON (eval_seq)
    s.eval_seq,
    lv1.clean_text(s.receipt_no) AS receipt_no,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.yyyymmdd_date(s.eval_dt) AS eval_dt,
    lv1.clean_text(s.eval_score_cd) AS eval_score_cd,
    eval_score.minor_nm AS eval_score_nm,
    s.kindness_score,
    s.time_score,
    s.skill_score,
    lv1.yes_no(s.recommend_yn) AS recommend_yn,
    lv1.clean_text(s.eval_chnl_cd) AS eval_chnl_cd,
    eval_chnl.minor_nm AS eval_chnl_nm,
    lv1.clean_text(s.eval_comment) AS eval_comment,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_service_evaluation AS s
LEFT JOIN lv1.codes('R4002') AS eval_score ON eval_score.minor_cd = btrim(s.eval_score_cd)  -- 만족도
LEFT JOIN lv1.codes('R2004') AS eval_chnl ON eval_chnl.minor_cd = btrim(s.eval_chnl_cd)  -- 접수경로
ORDER BY eval_seq, s.updt_dt DESC NULLS LAST
