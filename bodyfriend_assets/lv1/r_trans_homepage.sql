-- Inquiries from the web site (홈페이지 문의).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: trans_seq
-- mode: full
SELECT DISTINCT ON (trans_seq)
    s.trans_seq,
    s.member_uuid,
    lv1.clean_text(s.cust_nm) AS cust_nm,
    lv1.phone_number(s.hand_tel_no) AS hand_tel_no,
    lv1.clean_text(s.email) AS email,
    lv1.clean_text(s.inquiry_type_cd) AS inquiry_type_cd,
    inquiry_type.minor_nm AS inquiry_type_nm,
    lv1.clean_text(s.goods_cd) AS goods_cd,
    lv1.clean_text(s.inquiry_title) AS inquiry_title,
    lv1.clean_text(s.inquiry_content) AS inquiry_content,
    lv1.yes_no(s.trans_yn) AS trans_yn,
    s.trans_dttm,
    s.inquiry_date,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_trans_homepage AS s
LEFT JOIN lv1.codes('R2001') AS inquiry_type ON inquiry_type.minor_cd = btrim(s.inquiry_type_cd)  -- 접수유형
ORDER BY trans_seq, s.updt_dt DESC NULLS LAST
