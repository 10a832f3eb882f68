-- The code book: every B_MINOR code with its B_MAJOR header (공통코드). Other lv1 models decode
-- their code columns through it (major_cd, minor_cd -> minor_nm). A code of a major missing from
-- B_MAJOR is kept, with a NULL major_nm.
--
-- key: major_cd, minor_cd
-- mode: full
-- source: UNIERP5.B_MAJOR
SELECT DISTINCT ON (major_cd, minor_cd)
    btrim(mi.major_cd) AS major_cd,
    lv1.clean_text(ma.major_nm) AS major_nm,
    btrim(mi.minor_cd) AS minor_cd,
    lv1.clean_text(mi.minor_nm) AS minor_nm,
    lv1.clean_text(mi.minor_type) AS minor_type,
    mi.sort_seq,
    lv1.yes_no(mi.use_yn) AS use_yn,
    greatest(mi.updt_dt, ma.updt_dt) AS updt_dt
FROM lv0.b_minor AS mi
LEFT JOIN lv0.b_major AS ma
    ON btrim(ma.major_cd) = btrim(mi.major_cd)
ORDER BY major_cd, minor_cd, mi.updt_dt DESC NULLS LAST, ma.updt_dt DESC NULLS LAST
