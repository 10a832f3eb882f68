-- Service symptom types, top level (증상 대분류).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: symptom_big_cd
-- mode: full
-- source: RENTAL.R_PROD_SYMPTOM_HDR
SELECT DISTINCT ON (symptom_big_cd)
    btrim(s.symptom_big_cd) AS symptom_big_cd,
    lv1.clean_text(s.symptom_big_nm) AS symptom_big_nm,
    s.sort_seq,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_prod_symptom_hdr AS s
ORDER BY symptom_big_cd, s.updt_dt DESC NULLS LAST
