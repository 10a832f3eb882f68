-- Service_Receipt__c: after-sales service requests (R_SERVICE_RECEIPT), fed to
-- hc.service_receipt. Related to the contract (Opportunity), the customer (Account) and the
-- product by their external ids; the symptom is named at its three levels; the contact phones
-- are the decrypted, normalised ones.
--
-- key: external_id
-- mode: incremental
-- driving: lv1.r_service_receipt
-- lookback_days: 1
-- source: RENTAL.R_SERVICE_RECEIPT
SELECT
    r.receipt_no AS external_id,
    r.order_no AS opportunity_external_id,
    r.cust_no AS account_external_id,
    r.goods_cd AS product_external_id,
    r.receipt_dttm AS received_at,
    r.receipt_dt AS receipt_date,
    r.receipt_type_nm AS receipt_type,
    r.receipt_path_nm AS channel,
    r.svc_status_nm AS status,
    r.priority_nm AS priority,
    big.symptom_big_nm AS symptom_category,
    mid.symptom_mid_nm AS symptom_subcategory,
    sml.symptom_sml_nm AS symptom_detail,
    r.symptom_desc AS symptom_description,
    r.cust_nm AS contact_name,
    r.hand_tel_no AS contact_mobile_phone,
    r.tel_no AS contact_phone,
    r.zip_cd AS postal_code,
    r.region_nm AS state,
    NULLIF(concat_ws(' ', r.addr1, r.addr2), '') AS street,
    r.visit_hope_dt AS requested_visit_date,
    r.visit_plan_dt AS planned_visit_date,
    r.visit_dt AS visit_date,
    r.svc_center_nm AS service_center,
    engineer.user_nm AS engineer_name,
    r.complete_dttm AS completed_at,
    r.proc_result_nm AS result,
    r.proc_desc AS result_description,
    r.tot_amt AS total_amount,
    coalesce(r.pay_yn, false) AS is_paid,
    coalesce(r.free_yn, false) AS is_free_of_charge,
    coalesce(r.warranty_yn, false) AS is_under_warranty,
    coalesce(r.cancel_yn, false) AS is_cancelled,
    r.cust_satisfy_nm AS satisfaction,
    r.updt_dt AS erp_updated_at,
    r._partition
FROM lv1.r_service_receipt AS r
LEFT JOIN lv1.svc_type_big AS big
    ON big.symptom_big_cd = r.symptom_big_cd
LEFT JOIN lv1.svc_type_mid AS mid
    ON mid.symptom_big_cd = r.symptom_big_cd AND mid.symptom_mid_cd = r.symptom_mid_cd
LEFT JOIN lv1.svc_type_sml AS sml
    ON sml.symptom_big_cd = r.symptom_big_cd AND sml.symptom_mid_cd = r.symptom_mid_cd
    AND sml.symptom_sml_cd = r.symptom_sml_cd
LEFT JOIN lv1.v_erp_user AS engineer
    ON engineer.user_id = r.engineer_user_id
WHERE r._partition BETWEEN :partition_start AND :partition_end
