-- Salesforce Lead, one per reservation to try products in a lounge (R_EXPERIENCE_RESERVATION),
-- fed to hc.lead. The reserving person is the lead; a reservation made by a known customer
-- carries the customer number (converted_account_external_id).
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_EXPERIENCE_RESERVATION
-- references: lounge_external_id -> lv1.v_sales_lounge.lounge_cd
SELECT
    r.reservation_no AS external_id,
    r.rsv_nm AS last_name,
    r.rsv_hand_tel_no AS mobile_phone,
    r.rsv_tel_no AS phone,
    r.rsv_email AS email,
    r.rsv_status_nm AS status,
    r.inflow_path_nm AS lead_source,
    r.rsv_dt AS reservation_date,
    CASE WHEN r.rsv_time ~ '^[0-2][0-9][0-5][0-9]$'
        THEN substr(r.rsv_time, 1, 2) || ':' || substr(r.rsv_time, 3, 2) END AS reservation_time,
    r.person_cnt AS party_size,
    r.lounge_cd AS lounge_external_id,
    l.lounge_nm AS lounge_name,
    r.interest_goods_cd AS product_interest_external_id,
    coalesce(r.privacy_agree_yn, false) AS privacy_consent,
    NOT coalesce(r.marketing_agree_yn, false) AS has_opted_out_of_email,
    r.cust_no AS converted_account_external_id,
    r.rsv_memo AS description,
    r.updt_dt AS erp_updated_at
FROM lv1.r_experience_reservation AS r
LEFT JOIN lv1.v_sales_lounge AS l
    ON l.lounge_cd = r.lounge_cd
