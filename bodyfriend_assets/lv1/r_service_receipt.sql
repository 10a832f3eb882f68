-- After-sales service requests (서비스접수).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- tel_no and hand_tel_no are the numbers decrypted on the source (DEC_TEL_NO,
-- DEC_HAND_TEL_NO), normalised; the ciphertext is not kept.
-- Each run upserts the rows lv0 changed in its days, and in the day before (lookback_days)
-- for rows lv0 filed late under their own, earlier day.
--
-- key: receipt_no
-- mode: incremental
-- driving: lv0.r_service_receipt
-- lookback_days: 1
-- index: order_no
SELECT DISTINCT ON (receipt_no)
    btrim(s.receipt_no) AS receipt_no,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.clean_text(s.goods_cd) AS goods_cd,
    lv1.yyyymmdd_date(s.receipt_dt) AS receipt_dt,
    s.receipt_dttm,
    lv1.clean_text(s.receipt_type_cd) AS receipt_type_cd,
    receipt_type.minor_nm AS receipt_type_nm,
    lv1.clean_text(s.receipt_path_cd) AS receipt_path_cd,
    receipt_path.minor_nm AS receipt_path_nm,
    lv1.clean_text(s.svc_status_cd) AS svc_status_cd,
    svc_status.minor_nm AS svc_status_nm,
    lv1.clean_text(s.priority_cd) AS priority_cd,
    priority.minor_nm AS priority_nm,
    lv1.clean_text(s.symptom_big_cd) AS symptom_big_cd,
    lv1.clean_text(s.symptom_mid_cd) AS symptom_mid_cd,
    lv1.clean_text(s.symptom_sml_cd) AS symptom_sml_cd,
    lv1.clean_text(s.symptom_desc) AS symptom_desc,
    lv1.clean_text(s.error_cd) AS error_cd,
    lv1.clean_text(s.cust_nm) AS cust_nm,
    lv1.phone_number(s.dec_tel_no) AS tel_no,
    lv1.phone_number(s.dec_hand_tel_no) AS hand_tel_no,
    lv1.clean_text(s.zip_cd) AS zip_cd,
    lv1.clean_text(s.addr1) AS addr1,
    lv1.clean_text(s.addr2) AS addr2,
    lv1.yyyymmdd_date(s.visit_hope_dt) AS visit_hope_dt,
    lv1.clean_text(s.visit_hope_time) AS visit_hope_time,
    lv1.yyyymmdd_date(s.visit_plan_dt) AS visit_plan_dt,
    lv1.yyyymmdd_date(s.visit_dt) AS visit_dt,
    s.visit_start_dttm,
    s.visit_end_dttm,
    lv1.clean_text(s.svc_center_cd) AS svc_center_cd,
    svc_center.minor_nm AS svc_center_nm,
    lv1.clean_text(s.region_cd) AS region_cd,
    region.minor_nm AS region_nm,
    s.promise_dttm,
    lv1.clean_text(s.engineer_user_id) AS engineer_user_id,
    lv1.clean_text(s.receipt_user_id) AS receipt_user_id,
    lv1.clean_text(s.assign_user_id) AS assign_user_id,
    s.assign_dttm,
    s.complete_dttm,
    lv1.clean_text(s.proc_result_cd) AS proc_result_cd,
    proc_result.minor_nm AS proc_result_nm,
    lv1.clean_text(s.proc_desc) AS proc_desc,
    lv1.clean_text(s.cust_request) AS cust_request,
    lv1.clean_text(s.engineer_memo) AS engineer_memo,
    lv1.clean_text(s.delay_rsn) AS delay_rsn,
    lv1.clean_text(s.replace_goods_cd) AS replace_goods_cd,
    lv1.clean_text(s.part_cd) AS part_cd,
    lv1.clean_text(s.part_nm) AS part_nm,
    s.part_qty,
    s.part_amt,
    s.svc_amt,
    s.travel_amt,
    s.tot_amt,
    s.vat_amt,
    lv1.yes_no(s.pay_yn) AS pay_yn,
    lv1.clean_text(s.pay_method_cd) AS pay_method_cd,
    pay_method.minor_nm AS pay_method_nm,
    lv1.yes_no(s.free_yn) AS free_yn,
    lv1.yes_no(s.warranty_yn) AS warranty_yn,
    lv1.yyyymmdd_date(s.warranty_end_dt) AS warranty_end_dt,
    s.product_use_month,
    lv1.clean_text(s.serial_no) AS serial_no,
    lv1.clean_text(s.firmware_ver) AS firmware_ver,
    lv1.yes_no(s.revisit_yn) AS revisit_yn,
    lv1.clean_text(s.parent_receipt_no) AS parent_receipt_no,
    lv1.yes_no(s.cancel_yn) AS cancel_yn,
    lv1.clean_text(s.cancel_rsn) AS cancel_rsn,
    lv1.clean_text(s.call_id) AS call_id,
    lv1.clean_text(s.record_file_nm) AS record_file_nm,
    lv1.yes_no(s.happy_call_yn) AS happy_call_yn,
    lv1.yyyymmdd_date(s.happy_call_dt) AS happy_call_dt,
    s.cust_sign_img,
    s.sign_dttm,
    lv1.yes_no(s.sms_send_yn) AS sms_send_yn,
    lv1.yes_no(s.kakao_send_yn) AS kakao_send_yn,
    lv1.yes_no(s.survey_send_yn) AS survey_send_yn,
    lv1.yes_no(s.claim_yn) AS claim_yn,
    lv1.clean_text(s.cust_satisfy_cd) AS cust_satisfy_cd,
    cust_satisfy.minor_nm AS cust_satisfy_nm,
    lv1.yes_no(s.recall_yn) AS recall_yn,
    lv1.yes_no(s.remote_area_yn) AS remote_area_yn,
    lv1.yes_no(s.vip_yn) AS vip_yn,
    s.repeat_cnt,
    s.distance_km,
    s.latitude,
    s.longitude,
    s.crm_flag,
    lv1.clean_text(s.remark) AS remark,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt,
    s._partition
FROM lv0.r_service_receipt AS s
LEFT JOIN lv1.codes('R2001') AS receipt_type ON receipt_type.minor_cd = btrim(s.receipt_type_cd)  -- 접수유형
LEFT JOIN lv1.codes('R2004') AS receipt_path ON receipt_path.minor_cd = btrim(s.receipt_path_cd)  -- 접수경로
LEFT JOIN lv1.codes('R2002') AS svc_status ON svc_status.minor_cd = btrim(s.svc_status_cd)  -- 처리상태
LEFT JOIN lv1.codes('R2006') AS priority ON priority.minor_cd = btrim(s.priority_cd)  -- 우선순위
LEFT JOIN lv1.codes('R2005') AS svc_center ON svc_center.minor_cd = btrim(s.svc_center_cd)  -- 서비스센터
LEFT JOIN lv1.codes('C1004') AS region ON region.minor_cd = btrim(s.region_cd)  -- 시도
LEFT JOIN lv1.codes('R2003') AS proc_result ON proc_result.minor_cd = btrim(s.proc_result_cd)  -- 처리결과
LEFT JOIN lv1.codes('R1004') AS pay_method ON pay_method.minor_cd = btrim(s.pay_method_cd)  -- 결제수단
LEFT JOIN lv1.codes('R4002') AS cust_satisfy ON cust_satisfy.minor_cd = btrim(s.cust_satisfy_cd)  -- 만족도
WHERE s._partition BETWEEN :partition_start AND :partition_end
ORDER BY receipt_no, s.updt_dt DESC NULLS LAST
