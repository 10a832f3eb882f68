-- Inquiries from the web site (홈페이지 문의).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: trans_seq
-- mode: full
SELECT DISTINCT ON (trans_seq)
    s.trans_seq,
    s.member_uuid,
    NULLIF(btrim(s.cust_nm), '') AS cust_nm,
    lv1.phone_number(s.hand_tel_no) AS hand_tel_no,
    NULLIF(btrim(s.email), '') AS email,
    NULLIF(btrim(s.inquiry_type_cd), '') AS inquiry_type_cd,
    inquiry_type.minor_nm AS inquiry_type_nm,
    NULLIF(btrim(s.goods_cd), '') AS goods_cd,
    NULLIF(btrim(s.inquiry_title), '') AS inquiry_title,
    NULLIF(btrim(s.inquiry_content), '') AS inquiry_content,
    lv1.yes_no(s.trans_yn) AS trans_yn,
    s.trans_dttm,
    s.inquiry_date,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.r_trans_homepage AS s
LEFT JOIN lv1.code_master AS inquiry_type
    ON inquiry_type.major_cd = 'R2001' AND inquiry_type.minor_cd = btrim(s.inquiry_type_cd)  -- 접수유형
ORDER BY trans_seq, s.updt_dt DESC NULLS LAST
