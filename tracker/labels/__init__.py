"""Labels: QR codes, layouts for sheets and label printers, rendering to PDF, PNG and QL raster, the admin pages."""
