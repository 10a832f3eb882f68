-- Salesforce Opportunity, one per contract (R_ORDER_CONTRACT with its R_ORDER_CONTRACT_ADD
-- details, its customer and its product), fed to hc.opportunity.
-- Name = customer name / product name. Stage = the order status. Amount = the sale price of an
-- outright sale (계약유형 02 일시불), else the monthly rental times the months of the contract
-- period. A contract is refreshed when it, its details or its customer's account changed in the
-- window; a contract whose customer has no account yet waits for it (the account brings it in).
--
-- key: external_id
-- mode: incremental
-- driving: lv1.r_order_contract
-- lookback_days: 1
-- source: RENTAL.R_ORDER_CONTRACT
-- index: account_external_id
-- references: account_external_id -> lv2.account.external_id
-- references: product_external_id -> lv2.product2.external_id
WITH changed AS (
    SELECT c.order_no
    FROM lv1.r_order_contract AS c
    WHERE c._partition BETWEEN :partition_start AND :partition_end
    UNION
    SELECT ad.order_no
    FROM lv0.r_order_contract_add AS ad
    WHERE ad._partition BETWEEN :partition_start AND :partition_end
    UNION
    SELECT c.order_no
    FROM lv2.account AS a
    JOIN lv1.r_order_contract AS c
        ON c.cust_no = a.external_id
    WHERE a._partition BETWEEN :partition_start AND :partition_end
)
SELECT
    c.order_no AS external_id,
    left(concat_ws(' / ', a.name, p.name), 120) AS name,
    a.external_id AS account_external_id,
    c.goods_cd AS product_external_id,
    c.order_status_nm AS stage_name,
    c.cont_dt AS close_date,
    c.cont_type_nm AS type,
    c.sales_chnl_nm AS lead_source,
    CASE
        WHEN c.cont_type_cd = '02' THEN c.sale_amt
        WHEN c.cont_period_cd ~ '^[0-9]{1,3}$' THEN c.rental_amt * CAST(c.cont_period_cd AS integer)
    END AS amount,
    c.rental_amt AS monthly_rental_amount,
    c.discount_amt AS discount_amount,
    c.cont_period_nm AS contract_period,
    c.qty AS quantity,
    c.pay_method_nm AS payment_method,
    c.promotion_cd AS promotion_external_id,
    c.inst_dt AS installation_date,
    c.rental_start_dt AS rental_start_date,
    c.end_dt AS rental_end_date,
    c.cancel_dt AS cancellation_date,
    c.cancel_rsn_nm AS cancellation_reason,
    NULLIF(concat_ws(' ', c.inst_addr1, c.inst_addr2), '') AS installation_street,
    c.inst_zip_cd AS installation_postal_code,
    c.inst_region_nm AS installation_state,
    c.lounge_cd AS lounge_external_id,
    c.sales_user_id AS sales_user_id,
    coalesce(c.e_cont_yn, false) AS is_electronic_contract,
    coalesce(c.recontract_yn, false) AS is_recontract,
    membership_grade.minor_nm AS membership_grade,
    inflow_path.minor_nm AS inflow_path,
    NULLIF(btrim(ad.utm_source), '') AS utm_source,
    NULLIF(btrim(ad.utm_campaign), '') AS utm_campaign,
    NULLIF(btrim(ad.gift_nm), '') AS gift,
    c.updt_dt AS erp_updated_at,
    greatest(c._partition, ad._partition, a._partition) AS _partition
FROM changed
JOIN lv1.r_order_contract AS c
    ON c.order_no = changed.order_no
JOIN lv2.account AS a
    ON a.external_id = c.cust_no
LEFT JOIN lv2.product2 AS p
    ON p.external_id = c.goods_cd
LEFT JOIN lv0.r_order_contract_add AS ad  -- order numbers are VARCHAR: no padding to trim
    ON ad.order_no = c.order_no
LEFT JOIN lv1.code_master AS membership_grade
    ON membership_grade.major_cd = 'C1002' AND membership_grade.minor_cd = btrim(ad.membership_grade_cd)
LEFT JOIN lv1.code_master AS inflow_path
    ON inflow_path.major_cd = 'R1003' AND inflow_path.minor_cd = btrim(ad.inflow_path_cd)
