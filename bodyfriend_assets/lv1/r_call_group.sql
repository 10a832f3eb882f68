-- Call-centre groups (콜그룹).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: call_group_cd
-- mode: full
SELECT DISTINCT ON (call_group_cd)
    btrim(s.call_group_cd) AS call_group_cd,
    lv1.clean_text(s.call_group_nm) AS call_group_nm,
    lv1.clean_text(s.call_group_type_cd) AS call_group_type_cd,
    call_group_type.minor_nm AS call_group_type_nm,
    lv1.clean_text(s.mng_user_id) AS mng_user_id,
    s.sort_seq,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_call_group AS s
LEFT JOIN lv1.codes('R8001') AS call_group_type ON call_group_type.minor_cd = btrim(s.call_group_type_cd)  -- 콜그룹유형
ORDER BY call_group_cd, s.updt_dt DESC NULLS LAST
