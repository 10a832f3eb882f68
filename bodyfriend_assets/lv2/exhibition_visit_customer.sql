-- Exhibition_Visit_Customer__c: the person behind each lounge visit (R_EXHIBITION_VISIT_HISTORY),
-- fed to hc.exhibition_visit_customer (the old func_lv2_to_hc_exhibition_visit_customer). One
-- row per visit whose visitor is known by name, phone or customer number, related to the visit
-- (Exhibition_Visit__c), the lounge (BBS_Map__c), the customer (Account) and the reservation
-- (Lead) when the visitor had one.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_EXHIBITION_VISIT_HISTORY
-- references: lounge_external_id -> lv1.v_sales_lounge.lounge_cd
SELECT
    CAST(v.visit_seq AS text) AS external_id,
    CAST(v.visit_seq AS text) AS exhibition_visit_external_id,
    v.lounge_cd AS lounge_external_id,
    v.visitor_nm AS visitor_name,
    v.visitor_hand_tel_no AS mobile_phone,
    v.visit_dt AS visit_date,
    v.visitor_cnt AS visitor_count,
    v.cust_no IS NOT NULL AS is_existing_customer,
    v.cust_no AS account_external_id,
    v.reservation_no AS lead_external_id,
    coalesce(v.purchase_yn, false) AS purchased,
    v.updt_dt AS erp_updated_at
FROM lv1.r_exhibition_visit_history AS v
JOIN lv1.v_sales_lounge AS l
    ON l.lounge_cd = v.lounge_cd
WHERE v.visitor_nm IS NOT NULL OR v.visitor_hand_tel_no IS NOT NULL OR v.cust_no IS NOT NULL
