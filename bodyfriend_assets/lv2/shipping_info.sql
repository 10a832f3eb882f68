-- Shipping_Info__c: deliveries and installations (R_SHIPPING_INFO), fed to hc.shipping_info,
-- related to the contract, customer and product. The address is the one refined by lv1ex
-- where it was (lv1.address_master: street and postal code), else as the ERP holds it.
--
-- key: external_id
-- mode: incremental
-- driving: lv1.r_shipping_info
-- lookback_days: 1
-- source: RENTAL.R_SHIPPING_INFO
SELECT
    s.shipping_no AS external_id,
    s.order_no AS opportunity_external_id,
    s.cust_no AS account_external_id,
    s.goods_cd AS product_external_id,
    s.qty AS quantity,
    s.ship_status_nm AS status,
    s.ship_req_dt AS requested_date,
    s.ship_dt AS shipped_date,
    s.inst_dt AS installed_date,
    s.rcv_nm AS recipient_name,
    s.rcv_hand_tel_no AS recipient_mobile_phone,
    s.rcv_tel_no AS recipient_phone,
    coalesce(refined.postal_code, s.zip_cd) AS postal_code,
    coalesce(refined.street, NULLIF(concat_ws(' ', s.addr1, s.addr2), '')) AS street,
    s.delivery_center_nm AS delivery_center,
    driver.user_nm AS delivery_person,
    s.invoice_no,
    s.delivery_memo AS memo,
    s.updt_dt AS erp_updated_at,
    s._partition
FROM lv1.r_shipping_info AS s
LEFT JOIN lv1.v_erp_user AS driver
    ON driver.user_id = s.delivery_user_id
LEFT JOIN lv1.refined_addresses() AS refined
    ON refined.legacy_address = lv1.legacy_address(s.addr1, s.addr2)
WHERE s._partition BETWEEN :partition_start AND :partition_end
