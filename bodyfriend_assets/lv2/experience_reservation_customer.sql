-- Experience_Reservation_Customer__c: the person who reserved a product experience in a lounge
-- (R_EXPERIENCE_RESERVATION), fed to hc.experience_reservation_customer (the old
-- func_lv2_to_hc_experience_reservation_customer). One row per reservation, with the person's
-- contacts and consents, related to the reservation (Lead), the lounge (BBS_Map__c), the
-- customer (Account) when the person is one, and the product of interest.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_EXPERIENCE_RESERVATION
-- references: lounge_external_id -> lv1.v_sales_lounge.lounge_cd
SELECT
    r.reservation_no AS external_id,
    r.reservation_no AS lead_external_id,
    r.lounge_cd AS lounge_external_id,
    r.rsv_nm AS customer_name,
    r.rsv_hand_tel_no AS mobile_phone,
    r.rsv_tel_no AS phone,
    r.rsv_email AS email,
    r.rsv_dt AS reservation_date,
    r.rsv_status_nm AS reservation_status,
    r.cust_no IS NOT NULL AS is_existing_customer,
    r.cust_no AS account_external_id,
    r.interest_goods_cd AS product_interest_external_id,
    coalesce(r.privacy_agree_yn, false) AS privacy_consent,
    coalesce(r.marketing_agree_yn, false) AS marketing_consent,
    r.updt_dt AS erp_updated_at
FROM lv1.r_experience_reservation AS r
JOIN lv1.v_sales_lounge AS l
    ON l.lounge_cd = r.lounge_cd
