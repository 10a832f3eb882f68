-- Item groups (품목그룹).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: item_group_cd
-- mode: full
SELECT DISTINCT ON (item_group_cd)
    btrim(s.item_group_cd) AS item_group_cd,
    lv1.clean_text(s.item_group_nm) AS item_group_nm,
    s.item_group_lvl,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.b_item_group AS s
ORDER BY item_group_cd, s.updt_dt DESC NULLS LAST
