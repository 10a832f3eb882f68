-- Exhibition_Visit__c: visits to the sales lounges (R_EXHIBITION_VISIT_HISTORY), fed to
-- hc.exhibition_visit_history, related to the lounge, the reservation (Lead), the customer and
-- the contract a visit led to.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_EXHIBITION_VISIT_HISTORY
-- references: lounge_external_id -> lv1.v_sales_lounge.lounge_cd
SELECT
    CAST(v.visit_seq AS text) AS external_id,
    v.lounge_cd AS lounge_external_id,
    l.lounge_nm AS lounge_name,
    v.visit_dt AS visit_date,
    v.visit_dttm AS visited_at,
    v.visitor_nm AS visitor_name,
    v.visitor_hand_tel_no AS visitor_mobile_phone,
    v.visitor_cnt AS visitor_count,
    v.reservation_no AS lead_external_id,
    v.cust_no AS account_external_id,
    consultant.user_nm AS consultant_name,
    v.visit_purpose_nm AS visit_purpose,
    v.interest_goods_cd AS product_interest_external_id,
    v.experience_min AS experience_minutes,
    coalesce(v.purchase_yn, false) AS purchased,
    v.order_no AS opportunity_external_id,
    v.visit_memo AS description,
    v.updt_dt AS erp_updated_at
FROM lv1.r_exhibition_visit_history AS v
LEFT JOIN lv1.v_sales_lounge AS l
    ON l.lounge_cd = v.lounge_cd
LEFT JOIN lv1.v_erp_user AS consultant
    ON consultant.user_id = v.consult_user_id
