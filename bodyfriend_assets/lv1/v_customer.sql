-- Customers (고객).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- Each run upserts the rows lv0 changed in its days, and in the day before (lookback_days)
-- for rows lv0 filed late under their own, earlier day.
--
-- key: cust_no
-- mode: incremental
-- driving: lv0.v_customer
-- lookback_days: 1
SELECT DISTINCT ON (cust_no)
    btrim(s.cust_no) AS cust_no,
    lv1.clean_text(s.cust_nm) AS cust_nm,
    lv1.clean_text(s.cust_type_cd) AS cust_type_cd,
    cust_type.minor_nm AS cust_type_nm,
    lv1.clean_text(s.sex_cd) AS sex_cd,
    sex.minor_nm AS sex_nm,
    lv1.yyyymmdd_date(s.birth_dt) AS birth_dt,
    lv1.clean_text(s.solar_lunar_cd) AS solar_lunar_cd,
    solar_lunar.minor_nm AS solar_lunar_nm,
    lv1.phone_number(s.tel_no) AS tel_no,
    lv1.phone_number(s.hand_tel_no) AS hand_tel_no,
    lv1.clean_text(s.email) AS email,
    lv1.clean_text(s.zip_cd) AS zip_cd,
    lv1.clean_text(s.addr1) AS addr1,
    lv1.clean_text(s.addr2) AS addr2,
    lv1.clean_text(s.region_cd) AS region_cd,
    region.minor_nm AS region_nm,
    lv1.clean_text(s.cust_grade_cd) AS cust_grade_cd,
    cust_grade.minor_nm AS cust_grade_nm,
    lv1.clean_text(s.job_cd) AS job_cd,
    job.minor_nm AS job_nm,
    lv1.clean_text(s.biz_reg_no) AS biz_reg_no,
    lv1.clean_text(s.corp_nm) AS corp_nm,
    s.member_uuid,
    lv1.yes_no(s.marketing_agree_yn) AS marketing_agree_yn,
    lv1.yes_no(s.sms_agree_yn) AS sms_agree_yn,
    lv1.yes_no(s.email_agree_yn) AS email_agree_yn,
    lv1.yes_no(s.dm_agree_yn) AS dm_agree_yn,
    lv1.yyyymmdd_date(s.privacy_agree_dt) AS privacy_agree_dt,
    lv1.yyyymmdd_date(s.join_dt) AS join_dt,
    lv1.clean_text(s.join_chnl_cd) AS join_chnl_cd,
    join_chnl.minor_nm AS join_chnl_nm,
    lv1.yyyymmdd_date(s.first_order_dt) AS first_order_dt,
    lv1.yyyymmdd_date(s.last_order_dt) AS last_order_dt,
    s.order_cnt,
    s.rental_cnt,
    s.tot_rental_amt,
    s.unpaid_amt,
    lv1.clean_text(s.cust_status_cd) AS cust_status_cd,
    cust_status.minor_nm AS cust_status_nm,
    lv1.yes_no(s.dormant_yn) AS dormant_yn,
    lv1.yyyymmdd_date(s.withdraw_dt) AS withdraw_dt,
    lv1.yes_no(s.black_list_yn) AS black_list_yn,
    lv1.clean_text(s.mng_lounge_cd) AS mng_lounge_cd,
    lv1.clean_text(s.mng_user_id) AS mng_user_id,
    lv1.clean_text(s.remark) AS remark,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt,
    s._partition
FROM lv0.v_customer AS s
LEFT JOIN lv1.codes('C1003') AS cust_type ON cust_type.minor_cd = btrim(s.cust_type_cd)  -- 고객구분
LEFT JOIN lv1.codes('C1001') AS sex ON sex.minor_cd = btrim(s.sex_cd)  -- 성별
LEFT JOIN lv1.codes('C1006') AS solar_lunar ON solar_lunar.minor_cd = btrim(s.solar_lunar_cd)  -- 양음력
LEFT JOIN lv1.codes('C1004') AS region ON region.minor_cd = btrim(s.region_cd)  -- 시도
LEFT JOIN lv1.codes('C1002') AS cust_grade ON cust_grade.minor_cd = btrim(s.cust_grade_cd)  -- 고객등급
LEFT JOIN lv1.codes('C1005') AS job ON job.minor_cd = btrim(s.job_cd)  -- 직업
LEFT JOIN lv1.codes('R1003') AS join_chnl ON join_chnl.minor_cd = btrim(s.join_chnl_cd)  -- 판매채널
LEFT JOIN lv1.codes('C1007') AS cust_status ON cust_status.minor_cd = btrim(s.cust_status_cd)  -- 고객상태
WHERE s._partition BETWEEN :partition_start AND :partition_end
ORDER BY cust_no, s.updt_dt DESC NULLS LAST
