-- Customer ratings of after-sales service visits (서비스평가).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: eval_seq
-- mode: full
SELECT DISTINCT ON (eval_seq)
    s.eval_seq,
    NULLIF(btrim(s.receipt_no), '') AS receipt_no,
    NULLIF(btrim(s.order_no), '') AS order_no,
    NULLIF(btrim(s.cust_no), '') AS cust_no,
    lv1.yyyymmdd_date(s.eval_dt) AS eval_dt,
    NULLIF(btrim(s.eval_score_cd), '') AS eval_score_cd,
    eval_score.minor_nm AS eval_score_nm,
    s.kindness_score,
    s.time_score,
    s.skill_score,
    lv1.yes_no(s.recommend_yn) AS recommend_yn,
    NULLIF(btrim(s.eval_chnl_cd), '') AS eval_chnl_cd,
    eval_chnl.minor_nm AS eval_chnl_nm,
    NULLIF(btrim(s.eval_comment), '') AS eval_comment,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.r_service_evaluation AS s
LEFT JOIN lv1.code_master AS eval_score
    ON eval_score.major_cd = 'R4002' AND eval_score.minor_cd = btrim(s.eval_score_cd)  -- 만족도
LEFT JOIN lv1.code_master AS eval_chnl
    ON eval_chnl.major_cd = 'R2004' AND eval_chnl.minor_cd = btrim(s.eval_chnl_cd)  -- 접수경로
ORDER BY eval_seq, s.updt_dt DESC NULLS LAST
