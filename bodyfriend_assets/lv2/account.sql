-- Salesforce Account (a person account per ERP customer), fed to hc.account.
-- One row per customer; external_id is the ERP customer number (CUST_NO), the Account's
-- external id. Billing address = the customer's address, as refined by lv1ex where it was
-- (lv1.address_master: street and postal code), else as the ERP holds it; opt-ins from the
-- consent flags.
--
-- key: external_id
-- mode: incremental
-- driving: lv1.v_customer
-- lookback_days: 1
-- source: RENTAL.V_CUSTOMER
SELECT
    c.cust_no AS external_id,
    c.cust_nm AS name,
    c.cust_type_nm AS customer_type,
    c.sex_nm AS gender,
    c.birth_dt AS birthdate,
    c.hand_tel_no AS mobile_phone,
    c.tel_no AS phone,
    c.email,
    coalesce(refined.postal_code, c.zip_cd) AS billing_postal_code,
    c.region_nm AS billing_state,
    coalesce(refined.street, NULLIF(concat_ws(' ', c.addr1, c.addr2), '')) AS billing_street,
    c.cust_grade_nm AS customer_grade,
    c.cust_status_nm AS customer_status,
    c.job_nm AS occupation,
    c.corp_nm AS company_name,
    c.biz_reg_no AS business_registration_no,
    coalesce(c.marketing_agree_yn, false) AS marketing_opt_in,
    coalesce(c.sms_agree_yn, false) AS sms_opt_in,
    NOT coalesce(c.email_agree_yn, false) AS has_opted_out_of_email,
    coalesce(c.dm_agree_yn, false) AS direct_mail_opt_in,
    c.join_dt AS customer_since,
    c.join_chnl_nm AS account_source,
    c.first_order_dt AS first_order_date,
    c.last_order_dt AS last_order_date,
    c.order_cnt AS order_count,
    c.rental_cnt AS rental_count,
    c.tot_rental_amt AS total_rental_amount,
    c.unpaid_amt AS unpaid_amount,
    coalesce(c.dormant_yn, false) AS is_dormant,
    coalesce(c.black_list_yn, false) AS is_blacklisted,
    c.withdraw_dt AS withdrawn_date,
    c.mng_lounge_cd AS lounge_external_id,
    coalesce(c.use_yn, false) AS is_active,
    c.updt_dt AS erp_updated_at,
    c._partition
FROM lv1.v_customer AS c
LEFT JOIN lv1.refined_addresses() AS refined
    ON refined.legacy_address = lv1.legacy_address(c.addr1, c.addr2)
WHERE c._partition BETWEEN :partition_start AND :partition_end
